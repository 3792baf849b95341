// The clone's machine code shares no run of 16 bytes with the original's .text.
//
// A clone is built from the memcached fixture profile and every 16-byte window of its .text
// is looked up among all windows of /usr/bin/memcached's .text. Two kinds of shared window
// are left out, each as narrowly as we could state it:
//
// 1. Start-up code. gcc links the same crt1.o/crtbegin.o code (_start, register_tm_clones,
//    __do_global_dtors_aux, frame_dummy...) into every program, memcached and the clone
//    alike. Which functions those are is read from an empty program built with the clone's
//    compiler and flags; a window is left out only when it lies wholly in the clone's span
//    of them: from the end of the function before the first to the start of the function
//    after the last (the linker's alignment padding on each side is part of that span).
// 2. Generic compiler output. gcc ends a function that saved registers with the same pops,
//    `ret` and multi-byte nop padding, and begins the next with the same pushes, whatever
//    the program; these sequences cannot be written away in C. A window is left out only
//    when it also occurs in the .text of at least two of UNRELATED, programs that share no
//    source with memcached, so it says nothing about memcached in particular.
//
// Everything else must be absent. Runtime code that happened to compile to memcached's
// bytes was rewritten rather than excluded.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Profile, parseWith } from '../../src/model/index.js';
import { generateClone } from '../../src/generate/index.js';
import { buildClone } from '../../src/generate/build.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const WINDOW = 16;
const ORIGINAL = '/usr/bin/memcached';
/** Debian programs with no memcached code in them (a C shell, the C library, two servers
 *  written independently of memcached, a version-control tool). */
const UNRELATED = [
  '/usr/bin/bash',
  '/usr/lib/x86_64-linux-gnu/libc.so.6',
  '/usr/bin/redis-server',
  '/usr/sbin/nginx',
  '/usr/bin/git',
];
/** The flags the clone's Makefile compiles with (without the warnings). */
const CFLAGS = ['-std=gnu11', '-O2', '-pthread'];

const tmp = mkdtempSync(join(tmpdir(), 'twin-overlap-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface TextFunction {
  name: string;
  start: number;
  end: number;
}
/** A program's .text bytes, and its function symbols as offsets into them. */
interface ElfText {
  text: Buffer;
  functions: TextFunction[];
}

/** Reads .text and the FUNC symbols of .symtab from a little-endian ELF64 file. */
function readElfText(path: string): ElfText {
  const f = readFileSync(path);
  assert.equal(f.toString('latin1', 0, 4), '\x7fELF', `${path} is not an ELF file`);
  assert.equal(f[4], 2, `${path} is not ELF64`);
  const shoff = Number(f.readBigUInt64LE(0x28));
  const shentsize = f.readUInt16LE(0x3a);
  const shnum = f.readUInt16LE(0x3c);
  const section = (i: number) => {
    const h = shoff + i * shentsize;
    return {
      name: f.readUInt32LE(h),
      type: f.readUInt32LE(h + 4),
      addr: Number(f.readBigUInt64LE(h + 0x10)),
      offset: Number(f.readBigUInt64LE(h + 0x18)),
      size: Number(f.readBigUInt64LE(h + 0x20)),
      link: f.readUInt32LE(h + 0x28),
    };
  };
  const names = section(f.readUInt16LE(0x3e));
  const cstr = (at: number) => f.toString('latin1', at, f.indexOf(0, at));
  let textIndex = -1;
  for (let i = 0; i < shnum; i++) if (cstr(names.offset + section(i).name) === '.text') textIndex = i;
  assert.ok(textIndex >= 0, `${path} has no .text section`);
  const text = section(textIndex);
  const functions: TextFunction[] = [];
  for (let i = 0; i < shnum; i++) {
    const symtab = section(i);
    if (symtab.type !== 2) continue; // SHT_SYMTAB; stripped files have none
    const strtab = section(symtab.link);
    for (let s = symtab.offset; s < symtab.offset + symtab.size; s += 24) {
      if ((f[s + 4] & 0xf) !== 2 || f.readUInt16LE(s + 6) !== textIndex) continue; // STT_FUNC in .text
      const start = Number(f.readBigUInt64LE(s + 8)) - text.addr;
      functions.push({
        name: cstr(strtab.offset + f.readUInt32LE(s)),
        start,
        end: start + Number(f.readBigUInt64LE(s + 16)),
      });
    }
  }
  functions.sort((a, b) => a.start - b.start);
  return { text: f.subarray(text.offset, text.offset + text.size), functions };
}

function windowSet(code: Buffer): Set<string> {
  const set = new Set<string>();
  for (let i = 0; i + WINDOW <= code.length; i++) set.add(code.toString('latin1', i, i + WINDOW));
  return set;
}

function compile(name: string, source: string): string {
  const src = join(tmp, `${name}.c`);
  const out = join(tmp, name);
  writeFileSync(src, source);
  const r = spawnSync('gcc', [...CFLAGS, src, '-o', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, `gcc ${name}.c: ${r.error?.message ?? r.stderr}`);
  return out;
}

/** The names of the functions the toolchain adds to every program's .text. */
function startupFunctionNames(): Set<string> {
  const empty = readElfText(compile('empty', 'int main(void) { return 0; }\n'));
  const names = new Set(empty.functions.map((fn) => fn.name).filter((n) => n !== 'main'));
  assert.ok(names.has('_start'), `no _start in the empty program's .text: ${[...names].join(', ')}`);
  return names;
}

/** The [from, to) offsets of `elf`'s start-up code, with the padding around it. */
function startupSpan(elf: ElfText, startup: Set<string>): [number, number] {
  const first = elf.functions.findIndex((fn) => startup.has(fn.name));
  let last = first;
  while (last + 1 < elf.functions.length && startup.has(elf.functions[last + 1].name)) last++;
  assert.ok(first >= 0, 'no start-up functions in the program');
  const inSpan = elf.functions.filter((fn) => startup.has(fn.name));
  assert.equal(inSpan.length, last - first + 1, 'the start-up functions are not contiguous');
  const from = first > 0 ? Math.max(...elf.functions.slice(0, first).map((fn) => fn.end)) : 0;
  const to = last + 1 < elf.functions.length ? elf.functions[last + 1].start : elf.text.length;
  return [from, to];
}

function requireBinary(path: string): void {
  assert.ok(
    existsSync(path),
    `${path} is missing: this test compares against it (apt-get install ${path.split('/').pop()})`,
  );
}

interface Overlap {
  /** Distinct windows of the program found in the original's .text. */
  shared: number;
  /** Those left after leaving out start-up code. */
  afterStartup: number;
  /** Those left after leaving out generic compiler output as well. */
  remaining: { offset: number; function: string; hex: string }[];
}

interface Reference {
  originalText: Buffer;
  original: Set<string>;
  startup: Set<string>;
  unrelated: Buffer[];
}

function overlap(program: string, ref: Reference): Overlap {
  const elf = readElfText(program);
  const [from, to] = startupSpan(elf, ref.startup);
  // Each distinct shared window once, at its first offset outside the start-up span (-1 when
  // every occurrence of it lies in the span).
  const shared = new Map<string, number>();
  for (let i = 0; i + WINDOW <= elf.text.length; i++) {
    const w = elf.text.toString('latin1', i, i + WINDOW);
    if (!ref.original.has(w)) continue;
    const outside = i < from || i + WINDOW > to;
    if (!shared.has(w) || (shared.get(w)! < 0 && outside)) shared.set(w, outside ? i : -1);
  }
  const outsideStartup = [...shared].filter(([, offset]) => offset >= 0);
  const remaining = outsideStartup
    .filter(([w]) => ref.unrelated.filter((text) => text.includes(w, 0, 'latin1')).length < 2)
    .map(([w, offset]) => {
      const fn = elf.functions.filter((f) => f.start <= offset).pop();
      return {
        offset,
        function: fn ? `${fn.name}+0x${(offset - fn.start).toString(16)}` : '?',
        hex: Buffer.from(w, 'latin1').toString('hex'),
      };
    });
  return { shared: shared.size, afterStartup: outsideStartup.length, remaining };
}

let reference: Reference | undefined;
function loadReference(): Reference {
  if (reference) return reference;
  requireBinary(ORIGINAL);
  for (const path of UNRELATED) requireBinary(path);
  const originalText = readElfText(ORIGINAL).text;
  reference = {
    originalText,
    original: windowSet(originalText),
    startup: startupFunctionNames(),
    unrelated: UNRELATED.map((path) => readElfText(path).text),
  };
  return reference;
}

test(
  `the clone of memcached shares no ${WINDOW}-byte run of machine code with ${ORIGINAL}`,
  { timeout: 60_000 },
  (t) => {
    const ref = loadReference();
    const p = parseWith(
      Profile,
      JSON.parse(readFileSync(join(ROOT, 'test/fixtures/profile-memcached.json'), 'utf8')),
      'profile',
    );
    const dir = join(tmp, 'clone');
    generateClone(p, dir);
    const o = overlap(buildClone(dir), ref);
    t.diagnostic(
      `shared windows: ${o.shared}; after start-up code: ${o.afterStartup}; after generic compiler output: ${o.remaining.length}`,
    );
    assert.deepEqual(
      o.remaining,
      [],
      `the clone's .text repeats memcached's:\n${o.remaining.map((r) => `  .text+0x${r.offset.toString(16)} (${r.function}) ${r.hex}`).join('\n')}`,
    );
  },
);

test(
  'the overlap search finds a 64-byte slice of memcached code placed in a program',
  { timeout: 60_000 },
  (t) => {
    const ref = loadReference();
    const at = ref.originalText.length >> 1;
    const slice = ref.originalText.subarray(at, at + 64);
    // The slice is a function of its own, so that it lies outside the start-up span.
    const probe = compile(
      'probe',
      [
        'int main(void) { return 0; }',
        '__asm__(".text\\n.globl twin_probe\\n.type twin_probe, @function\\ntwin_probe:\\n"',
        `        ".byte ${[...slice].join(',')}\\n.size twin_probe, .-twin_probe\\n");`,
        '',
      ].join('\n'),
    );
    const o = overlap(probe, ref);
    t.diagnostic(
      `shared windows: ${o.shared}; after start-up code: ${o.afterStartup}; after generic compiler output: ${o.remaining.length}`,
    );
    // All 49 windows of the slice are shared; a few could in principle be generic code.
    assert.ok(
      o.afterStartup >= 64 - WINDOW + 1,
      `only ${o.afterStartup} shared windows outside the start-up code`,
    );
    const inSlice = o.remaining.filter((r) => r.function.startsWith('twin_probe+'));
    assert.ok(
      inSlice.length >= 40,
      `only ${inSlice.length} of the slice's ${64 - WINDOW + 1} windows were reported`,
    );
  },
);
