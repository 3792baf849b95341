import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { TwinError } from '../model/index.js';
import { isToolObject } from './callgrind.js';
import { X86_PREFIXES } from './x86.js';

/** One instruction of a disassembly. */
export interface DisasmInsn {
  /** The mnemonic with its prefixes (`rep stos`, `lock cmpxchg`). */
  mnemonic: string;
  operands: string;
  /** Bytes of machine code. */
  length: number;
}

/** Parses `objdump -d -w` output, with or without raw bytes (without them, an instruction's
 *  length is the distance to the next one in its section, 0 for a section's last). Given
 *  `only`, keeps the instructions at those addresses alone. */
export function parseObjdump(text: string, only?: ReadonlySet<number>): Map<number, DisasmInsn> {
  const code = new Map<number, DisasmInsn>();
  let previous: { addr: number; insn: DisasmInsn } | null = null;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    // Instruction lines are `   addr:\tbytes \tasm` or `   addr:\tasm`; the rest are headers.
    const colon = line.indexOf(':\t');
    if (colon < 0 || line.charCodeAt(0) !== 32) {
      if (line.startsWith('Disassembly of section')) previous = null;
      continue;
    }
    const addr = parseInt(line.slice(0, colon), 16);
    if (Number.isNaN(addr)) continue;
    if (previous) {
      previous.insn.length = addr - previous.addr;
      previous = null;
    }
    if (only && !only.has(addr)) continue;
    const tab = line.indexOf('\t', colon + 2);
    let asm: string;
    let length = 0;
    if (tab >= 0) {
      const bytes = line.slice(colon + 2, tab).trim();
      length = bytes.length > 0 ? (bytes.length + 1) / 3 : 0;
      asm = line.slice(tab + 1);
    } else {
      asm = line.slice(colon + 2);
    }
    const hash = asm.indexOf('#');
    asm = (hash >= 0 ? asm.slice(0, hash) : asm).trim();
    if (asm === '') continue; // a continuation line of bytes
    let space = asm.indexOf(' ');
    while (space > 0 && X86_PREFIXES.has(asm.slice(asm.lastIndexOf(' ', space - 1) + 1, space))) {
      const next = asm.indexOf(' ', space + 1);
      if (next < 0) break;
      space = next;
    }
    const insn: DisasmInsn =
      space < 0
        ? { mnemonic: asm, operands: '', length }
        : { mnemonic: asm.slice(0, space).replace(/ +/g, ' '), operands: asm.slice(space).trim(), length };
    code.set(addr, insn);
    previous = tab >= 0 ? null : { addr, insn };
  }
  return code;
}

/** A disassembly held for the process's life: all of an object, or the addresses asked so far. */
interface Disassembly {
  code: Map<number, DisasmInsn>;
  complete: boolean;
  asked: Set<number>;
}
const disassembled = new Map<string, Disassembly>();

/** The machine code of one object, from objdump: all of it, or, given `only`, at least the
 *  instructions at those addresses (much cheaper for a large library of which a run touches
 *  little). Empty where the object is no readable file (`???`, `[vdso]`) or belongs to
 *  valgrind. Cached for the process's life per file as it is: a clone rebuilt at the same
 *  path (each tuning iteration) is another file. */
export function disassemble(path: string, only?: ReadonlySet<number>): Map<number, DisasmInsn> {
  const version = objectVersion(path);
  if (version === null) return new Map();
  const held = disassembled.get(version);
  if (held && (held.complete || (only && [...only].every((a) => held.asked.has(a))))) return held.code;
  const asked = only ? new Set([...(held?.asked ?? []), ...only]) : null;
  const code = objdump(path, asked);
  disassembled.set(version, { code, complete: asked === null, asked: asked ?? new Set() });
  return code;
}

/** A readable object file's identity as it is now (path, inode, size, modification time),
 *  or null for none. */
function objectVersion(path: string): string | null {
  try {
    if (isToolObject(path) || !path.startsWith('/')) return null;
    const s = statSync(path);
    return s.isFile() ? `${path}\0${s.ino}\0${s.size}\0${s.mtimeMs}` : null;
  } catch {
    return null;
  }
}

/** Runs objdump over the whole object, or over the address range of `wanted` only. */
function objdump(path: string, wanted: Set<number> | null): Map<number, DisasmInsn> {
  const args = ['-d', '-w'];
  if (wanted) {
    if (wanted.size === 0) return new Map();
    let lo = Infinity;
    let hi = -Infinity;
    for (const a of wanted) {
      lo = Math.min(lo, a);
      hi = Math.max(hi, a);
    }
    // An x86 instruction is at most 15 bytes long.
    args.push(`--start-address=0x${lo.toString(16)}`, `--stop-address=0x${(hi + 16).toString(16)}`);
  }
  let out: string;
  try {
    out = execFileSync('objdump', [...args, path], {
      encoding: 'utf8',
      maxBuffer: 512 << 20,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TwinError('objdump not found: install binutils to read the instruction mix');
    }
    // Output past the buffer is no unknown object: its instructions would all count as other.
    if (
      (e as NodeJS.ErrnoException).code === 'ENOBUFS' ||
      (e as NodeJS.ErrnoException).code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER'
    ) {
      throw new TwinError(
        `objdump's listing of ${path} is over 512 MiB: the instruction mix cannot be read from it`,
      );
    }
    // Not an object file objdump knows: its instructions count as unknown.
    return new Map();
  }
  return parseObjdump(out, wanted ?? undefined);
}
