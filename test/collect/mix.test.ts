import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INSN_CLASSES, InsnMix, TwinError, type InsnClass } from '../../src/model/index.js';
import { classify } from '../../src/collect/x86.js';
import {
  codeSets,
  parseCallgrind,
  subtractRuns,
  type CallgrindRun,
  type InsnCost,
} from '../../src/collect/callgrind.js';
import { disassemble, parseObjdump } from '../../src/collect/objdump.js';
import { insnMix } from '../../src/collect/mix.js';
import { combineCode, parseReuse, REUSE_LIB } from '../../src/collect/reuse.js';

const fixture = (f: string) =>
  readFileSync(new URL(`../../../test/collect/fixtures/${f}`, import.meta.url), 'utf8');

/** The program of the fixtures and of the end-to-end test: `work` runs n iterations of an
 *  imul, a load, a store and a branch on a pseudo-random value, taken about 1 time in 4. The
 *  fixtures are `./loop 1000` under callgrind --toggle-collect=main, and `objdump -d -w loop`. */
const LOOP_C = `#include <stdlib.h>
static unsigned long buf[256];
__attribute__((noinline)) unsigned long work(unsigned long n, unsigned long seed) {
  unsigned long acc = 0, x = seed;
  for (unsigned long i = 0; i < n; i++) {
    x = x * 6364136223846793005UL + 1442695040888963407UL;
    unsigned long v = buf[i & 255];
    if (((x >> 33) & 3) != 0) { __asm__ volatile(""); acc += v; }
    buf[(i + 7) & 255] = acc ^ x;
  }
  return acc;
}
int main(int argc, char **argv) {
  unsigned long n = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;
  return (int)(work(n, 12345) & 1);
}
`;

/** How often `work`'s branch skips the addition in n iterations: ((x >> 33) & 3) == 0. */
function skips(n: number): number {
  const mask = (1n << 64n) - 1n;
  let x = 12345n;
  let count = 0;
  for (let i = 0; i < n; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & mask;
    if (((x >> 33n) & 3n) === 0n) count++;
  }
  return count;
}

/** Splits an objdump instruction at its first blank, as the disassembly does before prefixes. */
function insn(text: string) {
  const t = text.trim();
  const i = t.search(/\s/);
  return i < 0 ? classify(t, '') : classify(t.slice(0, i), t.slice(i).trim());
}

type Row = [text: string, cls: InsnClass, mem: boolean, reads?: string[], writes?: string[]];

/** Lines of `objdump -d --no-show-raw-insn` of libc.so.6 (first block) and memcached. */
const TABLE: Row[] = [
  ['mov    0x10(%rsp),%rdi', 'load', true, ['rsp'], ['rdi']],
  ['mov    %rax,0x98(%rsp)', 'store', true, ['rax', 'rsp'], []],
  ['movzbl (%rdi),%eax', 'load', true, ['rdi'], ['rax']],
  ['movslq (%rdx,%rax,4),%rax', 'load', true, ['rax', 'rdx'], ['rax']],
  ['movsbl %cl,%esi', 'alu', false, ['rcx'], ['rsi']],
  ['movabs $0xfff7ffffffffbff8,%r11', 'alu', false, [], ['r11']],
  ['lea    0x1(%rdi),%rax', 'alu', false, ['rdi'], ['rax']],
  ['add    (%r14),%rcx', 'loadop', true, ['r14', 'rcx'], ['rcx']],
  ['addl   $0x1,0x14(%r12)', 'loadop', true, ['r12'], []],
  ['lock cmpxchg %edx,(%rdi)', 'loadop', true, ['rax', 'rdi', 'rdx'], ['rax']],
  ['lock xadd %eax,(%rdx)', 'loadop', true, ['rax', 'rdx'], ['rax']],
  ['xchg   %edx,(%rdi)', 'loadop', true, ['rdi', 'rdx'], ['rdx']],
  [
    'cmpb   $0x0,0x1bae60(%rip)        # 1e1f4e <__key_encryptsession_pk_LOCAL@GLIBC_2.2.5+0x3ee>',
    'loadop',
    true,
    [],
    [],
  ],
  ['test   %rdi,%rdi', 'alu', false, ['rdi'], []],
  ['je     263f2 <abort@@GLIBC_2.2.5+0x53>', 'cond', false, [], []],
  ['notrack jmp *%rax', 'indirect', false, ['rax'], []],
  ['jmp    *0x1acfec(%rip)        # 1d2ff8 <h_errlist@@GLIBC_2.2.5+0xd98>', 'indirect', true, [], []],
  ['call   *0x8(%rax)', 'callret', true, ['rax', 'rsp'], ['rsp']],
  ['call   2639f <abort@@GLIBC_2.2.5>', 'callret', true, ['rsp'], ['rsp']],
  ['ret', 'callret', true, ['rsp'], ['rsp']],
  ['repz ret', 'callret', true],
  ['rep stos %rax,%es:(%rdi)', 'string', true, ['rax', 'rcx', 'rdi'], ['rcx', 'rdi']],
  ['rep movsq %ds:(%rsi),%es:(%rdi)', 'string', true, ['rcx', 'rdi', 'rsi'], ['rcx', 'rdi', 'rsi']],
  ['movsq  %ds:(%rsi),%es:(%rdi)', 'string', true, ['rdi', 'rsi'], ['rdi', 'rsi']],
  ['push   %rbp', 'store', true, ['rbp', 'rsp'], ['rsp']],
  ['pop    %rbx', 'load', true, ['rsp'], ['rbx', 'rsp']],
  ['imul   %rax,%rdx', 'mul', false, ['rax', 'rdx'], ['rdx']],
  ['imul   $0xff0,%r12d,%edx', 'mul', false, ['r12'], ['rdx']],
  ['mul    %rdx', 'mul', false, ['rax', 'rdx'], ['rax', 'rdx']],
  ['div    %rcx', 'div', false, ['rax', 'rcx', 'rdx'], ['rax', 'rdx']],
  ['idivl  0x10(%rdi)', 'loadop', true, ['rax', 'rdi', 'rdx'], ['rax', 'rdx']],
  ['pxor   %xmm0,%xmm0', 'fp', false, [], ['v0']],
  ['movdqu (%rsi),%xmm0', 'load', true, ['rsi'], ['v0']],
  ['movups %xmm0,(%rdi)', 'store', true, ['rdi', 'v0'], []],
  ['vpcmpeqb (%rdi),%ymm0,%ymm1', 'loadop', true, ['rdi', 'v0'], ['v1']],
  ['vpmovmskb %ymm1,%eax', 'fp', false, ['v1'], ['rax']],
  ['pmovmskb %xmm0,%eax', 'fp', false, ['v0'], ['rax']],
  ['addsd  %xmm0,%xmm1', 'fp', false, ['v0', 'v1'], ['v1']],
  ['movq   %xmm0,%rax', 'fp', false, ['v0'], ['rax']],
  ['nopw   0x0(%rax,%rax,1)', 'other', false, [], []],
  ['cs nopw 0x0(%rax,%rax,1)', 'other', false, [], []],
  ['endbr64', 'other', false, [], []],
  ['syscall', 'other', false],
  ['mov    %fs:0x28,%rax', 'load', true, [], ['rax']],
  ['sub    %fs:0x28,%rdx', 'loadop', true, ['rdx'], ['rdx']],
  ['sete   %al', 'alu', false, [], ['rax']],
  ['sete   0x60(%rsp)', 'store', true, ['rsp'], []],
  ['cmove  %rax,%rdi', 'alu', false, ['rax', 'rdi'], ['rdi']],
  ['cltq', 'alu', false, ['rax'], ['rax']],
  ['cqto', 'alu', false, ['rax'], ['rdx']],
  ['bswap  %edx', 'alu', false, ['rdx'], ['rdx']],
  ['tzcnt  %rcx,%rcx', 'alu', false, ['rcx'], ['rcx']],
  ['bt     %r8,%r11', 'alu', false, ['r11', 'r8'], []],
  ['shl    %cl,%eax', 'alu', false, ['rax', 'rcx'], ['rax']],
  ['sar    %rsi', 'alu', false, ['rsi'], ['rsi']],
  ['neg    %eax', 'alu', false, ['rax'], ['rax']],
  ['sbb    %eax,%eax', 'alu', false],
  ['blsr   %r11,%r11', 'alu', false, ['r11'], ['r11']],
  ['pause', 'other', false],
  ['sfence', 'other', false],
  ['xchg   %ax,%ax', 'other', false, [], []],
  ['prefetcht0 0x40(%rsi)', 'other', true, ['rsi'], []],
  ['fldt   (%rcx)', 'load', true, ['rcx'], ['st0']],
  ['cpuid', 'other', false],
  ['rdtsc', 'other', false, [], ['rax', 'rdx']],
  ['ud2', 'other', false],
  ['hlt', 'other', false],
  ['jrcxz  4c680 <__xpg_basename@@GLIBC_2.2.5+0x110>', 'cond', false, ['rcx'], []],
  ['movss  0x1658b8(%rip),%xmm2        # 1a0d00 <in6addr_any@@GLIBC_2.2.5+0xf0>', 'load', true, [], ['v2']],
  ['movl   $0x0,%fs:(%rax)', 'store', true, ['rax'], []],
  ['vmovdqu8 %ymm16,(%rax){%k1}', 'store', true, ['k1', 'rax', 'v16'], []],
  ['kmovd  %k0,%eax', 'fp', false, ['k0'], ['rax']],
  // memcached
  ['call   *%rax', 'callret', true, ['rax', 'rsp'], ['rsp']],
  ['movzwl 0x2dd50(%rip),%eax        # 33b02 <__cxa_finalize@plt+0x2dfc2>', 'load', true, [], ['rax']],
  ['cmpl   $0x0,0x39477(%rip)        # 3f8b0 <stderr@GLIBC_2.2.5+0xb0>', 'loadop', true],
  ['movq   $0x0,0x10(%rax)', 'store', true, ['rax'], []],
  ['push   %r15', 'store', true, ['r15', 'rsp'], ['rsp']],
  ['shr    $0x14,%rdx', 'alu', false, ['rdx'], ['rdx']],
  ['cvtsi2sd %rax,%xmm0', 'fp', false],
  ['mulsd  (%rsp),%xmm0', 'loadop', true, ['rsp', 'v0'], ['v0']],
  ['movsd  %xmm0,0x3958c(%rip)        # 3f8f0 <stderr@GLIBC_2.2.5+0xf0>', 'store', true, ['v0'], []],
  ['xor    %eax,%eax', 'alu', false, [], ['rax']],
  ['movb   $0x0,0x39cda(%rip)        # 3f9e0 <stderr@GLIBC_2.2.5+0x1e0>', 'store', true],
  ['movslq %ecx,%rax', 'alu', false, ['rcx'], ['rax']],
  ['movdqa %xmm0,%xmm1', 'fp', false, ['v0'], ['v1']],
  ['nopl   0x0(%rax)', 'other', false, [], []],
  ['jmp    5020 <__printf_chk@plt-0x10>', 'jump', false, [], []],
  ['jne    5c31 <__cxa_finalize@plt+0xf1>', 'cond', false],
  ['cmovne %rax,%rdx', 'alu', false, ['rax', 'rdx'], ['rdx']],
  ['sub    $0x8,%rsp', 'alu', false, ['rsp'], ['rsp']],
  ['setne  %al', 'alu', false, [], ['rax']],
];

test('classify: real objdump lines of libc and memcached', () => {
  assert.ok(TABLE.length >= 40);
  for (const [text, cls, mem, reads, writes] of TABLE) {
    const k = insn(text);
    assert.equal(k.cls, cls, `class of '${text}'`);
    assert.equal(k.mem, mem, `mem of '${text}'`);
    if (reads) assert.deepEqual([...k.reads].sort(), reads, `reads of '${text}'`);
    if (writes) assert.deepEqual([...k.writes].sort(), writes, `writes of '${text}'`);
  }
});

test('classify: prefixes may sit in the mnemonic or the operands; control transfers end blocks', () => {
  assert.deepEqual(classify('rep stos', '%rax,%es:(%rdi)'), classify('rep', 'stos %rax,%es:(%rdi)'));
  assert.equal(classify('lock', 'subl $0x1,(%rdi)').cls, 'loadop');
  assert.equal(classify('data16', 'cs nopw 0x0(%rax,%rax,1)').cls, 'other');
  for (const t of ['syscall', 'ret', 'jne    5c31 <x>', 'call   *%rax', 'jmp    *%rdx'])
    assert.equal(insn(t).endsBlock, true, t);
  for (const t of ['mov    %rax,%rdx', 'cpuid', 'rep stos %rax,%es:(%rdi)'])
    assert.equal(insn(t).endsBlock, false, t);
  assert.equal(insn('(bad)').cls, 'other');
});

test('parseObjdump keeps prefixes with the mnemonic and counts instruction bytes', () => {
  const code = parseObjdump(fixture('objdump-loop.txt'));
  assert.deepEqual(code.get(0x11b0), { mnemonic: 'imul', operands: '%r11,%rsi', length: 4 });
  assert.deepEqual(code.get(0x1085), { mnemonic: 'cs nopw', operands: '0x0(%rax,%rax,1)', length: 10 });
  assert.equal(code.get(0x1193)?.length, 10);
  // Without raw bytes, a length is the distance to the next instruction.
  const bare = parseObjdump(
    'Disassembly of section .text:\n\n0000000000001180 <work>:\n    1180:\tmov    %rdi,%r9\n    1183:\ttest   %rdi,%rdi\n    1186:\tje     11f0 <work+0x70>\n',
  );
  assert.equal(bare.get(0x1180)?.length, 3);
  assert.equal(bare.get(0x1183)?.length, 3);
  const some = parseObjdump(fixture('objdump-loop.txt'), new Set([0x11b0, 0x11e5]));
  assert.deepEqual([...some.keys()], [0x11b0, 0x11e5]);
  // Objects without a file, and valgrind's own, have no code to read.
  for (const p of ['???', '[vdso]', '/usr/libexec/valgrind/vgpreload_core-amd64-linux.so'])
    assert.equal(disassemble(p).size, 0);
});

test('callgrind fixture: self costs per instruction, branch counts, call costs not added', () => {
  const run = parseCallgrind(fixture('callgrind-loop.out'));
  assert.deepEqual(run.events, [
    'Ir',
    'Dr',
    'Dw',
    'I1mr',
    'D1mr',
    'D1mw',
    'ILmr',
    'DLmr',
    'DLmw',
    'Bc',
    'Bcm',
    'Bi',
    'Bim',
  ]);
  const loop = run.objects.get('/tmp/twin-mix/loop')!;
  // work's loop, 0x11b0..0x11e5: every instruction but the skipped addition ran 1000 times.
  for (const a of [
    0x11b0, 0x11b4, 0x11b7, 0x11bb, 0x11be, 0x11c1, 0x11c5, 0x11c8, 0x11cd, 0x11d1, 0x11d4, 0x11d8, 0x11db,
    0x11de, 0x11e2, 0x11e5,
  ]) {
    assert.equal(loop.get(a)?.ir, 1000, `ir at ${a.toString(16)}`);
  }
  // je 11cd at 0x11c8 skips the addition when ((x >> 33) & 3) == 0: 257 times in 1000.
  const skip = loop.get(0x11c8)!;
  assert.equal(skip.bc, 1000);
  assert.equal(skip.taken, skips(1000));
  assert.ok(Math.abs(skip.taken / skip.bc - 0.25) < 0.02);
  assert.equal(loop.get(0x11ca)!.ir, 1000 - skip.taken);
  // The back edge: taken 999 times of 1000, counted over two contexts (first pass and loop).
  assert.deepEqual(loop.get(0x11e5), { ir: 1000, bc: 1000, taken: 999, execs: 1000 });
  // main's `call work` ran once; the inclusive cost written after `calls=` is not its own.
  assert.equal(loop.get(0x1078)!.ir, 1);
  let ir = 0;
  let bc = 0;
  for (const costs of run.objects.values()) {
    for (const c of costs.values()) {
      ir += c.ir;
      bc += c.bc;
    }
  }
  assert.equal(ir, run.totals.Ir);
  assert.equal(run.totals.Ir, 17562);
  assert.equal(bc, run.totals.Bc);
});

test('callgrind position compression: relative, same, and jump/call targets that do not move it', () => {
  const text = [
    'positions: instr line',
    'events: Ir Bc',
    'ob=(1) /bin/a',
    'fn=(1) f',
    '0x100 10 1',
    '+4 +1 2 1',
    'jcnd=3/5 +16 *',
    '* * ',
    '+2 * 7',
    'cob=(2) /lib/b',
    'cfn=(2) g',
    'calls=1 0x9000 5',
    '* * 500 40',
    '-6 -1 1',
    'jump=2 +20 0',
    '* 0',
    'fn=(3) h',
    '* * 4',
    'ob=(2)',
    '0x10 0 3',
    'totals: 18 1',
  ].join('\n');
  const run = parseCallgrind(text);
  const a = run.objects.get('/bin/a')!;
  // 0x100 three times (the last after fn= changed), never the call's inclusive 500.
  assert.deepEqual(a.get(0x100), { ir: 1 + 1 + 4, bc: 0, taken: 0, execs: 0 });
  assert.deepEqual(a.get(0x104), { ir: 2, bc: 1, taken: 3, execs: 5 });
  assert.deepEqual(a.get(0x106), { ir: 7, bc: 0, taken: 0, execs: 0 });
  assert.equal(a.size, 3);
  assert.deepEqual(run.objects.get('/lib/b')!.get(0x10), { ir: 3, bc: 0, taken: 0, execs: 0 });
  assert.deepEqual(run.totals, { Ir: 18, Bc: 1 });
  // jcnd counts go to the source position line that follows.
  const withJcnd = parseCallgrind(
    ['positions: instr', 'events: Ir Bc', 'ob=/x', '0x20 5 5', 'jcnd=2/5 +30', '*'].join('\n'),
  );
  assert.deepEqual(withJcnd.objects.get('/x')!.get(0x20), { ir: 5, bc: 5, taken: 2, execs: 5 });
});

test('callgrind input errors say what to do', () => {
  assert.throws(
    () => parseCallgrind(''),
    (e: unknown) => e instanceof TwinError && /events/.test(e.message),
  );
  assert.throws(() => parseCallgrind('positions: line\nevents: Ir\nfl=a.c\n10 5\n'), /--dump-instr=yes/);
  // Valgrind's own preload library is not the target's.
  const run = parseCallgrind(
    'positions: instr\nevents: Ir\nob=(1) /usr/libexec/valgrind/vgpreload_core-amd64-linux.so\n0x10 5\nob=(2) /t\n0x20 1\n',
  );
  assert.deepEqual([...run.objects.keys()], ['/t']);
});

const cost = (ir: number, bc = 0, taken = 0, execs = 0): InsnCost => ({ ir, bc, taken, execs });

test('subtractRuns: per object and address, clamped at zero', () => {
  const large: CallgrindRun = {
    events: ['Ir', 'Bc'],
    totals: { Ir: 1000, Bc: 100 },
    objects: new Map([
      [
        '/bin/a',
        new Map([
          [0x10, cost(300, 30, 10, 30)],
          [0x14, cost(5)],
          [0x18, cost(9)],
        ]),
      ],
      ['/lib/b', new Map([[0x40, cost(7)]])],
    ]),
  };
  const small: CallgrindRun = {
    events: ['Ir', 'Bc'],
    totals: { Ir: 400, Bc: 120 },
    objects: new Map([
      [
        '/bin/a',
        new Map([
          [0x10, cost(100, 10, 4, 10)],
          [0x14, cost(8)],
          [0x18, cost(9)],
          [0x1c, cost(3)],
        ]),
      ],
      ['/lib/c', new Map([[0x50, cost(2)]])],
    ]),
  };
  const d = subtractRuns(large, small);
  assert.deepEqual(d.totals, { Ir: 600, Bc: 0 });
  assert.deepEqual([...d.objects.keys()], ['/bin/a', '/lib/b']);
  assert.deepEqual([...d.objects.get('/bin/a')!], [[0x10, cost(200, 20, 6, 20)]]);
  assert.deepEqual([...d.objects.get('/lib/b')!], [[0x40, cost(7)]]);
});

/** No object path segment and no hex address may appear in a mix. */
function assertAnonymous(mix: InsnMix, paths: string[]): void {
  const json = JSON.stringify(mix);
  assert.ok(!json.includes('/'), 'a slash in the mix');
  assert.ok(!/0x[0-9a-f]/i.test(json), 'a hex address in the mix');
  for (const p of paths) {
    for (const segment of p.split('/').filter((s) => s.length >= 3))
      assert.ok(!json.includes(segment), `'${segment}' in the mix`);
  }
}

const sum = (h: { share: number }[]) => h.reduce((a, b) => a + b.share, 0);
const shareAt = (h: { upTo: number | null; share: number }[], upTo: number | null) =>
  h.find((b) => b.upTo === upTo)!.share;

test('insnMix of the fixture: classes, basic blocks and taken rates of the known loop', () => {
  const run = parseCallgrind(fixture('callgrind-loop.out'));
  const loopCode = parseObjdump(fixture('objdump-loop.txt'));
  // Only the program's own code is given: libc's and ld.so's instructions are unknown here.
  const mix = insnMix(run, 2, (path) => (path === '/tmp/twin-mix/loop' ? loopCode : new Map()));
  InsnMix.parse(mix);
  assert.equal(mix.insnsPerReq, 17562 / 2);
  let own = 0;
  for (const c of run.objects.get('/tmp/twin-mix/loop')!.values()) own += c.ir;
  assert.ok(Math.abs(mix.unknownShare - (17562 - own) / 17562) < 1e-12);
  assert.ok(Math.abs(mix.shares.mul * 17562 - 1000) < 1e-6, 'one imul per iteration');
  assert.ok(Math.abs(sum(INSN_CLASSES.map((c) => ({ share: mix.shares[c] }))) - 1) < 1e-9);
  assert.equal(mix.memShares.load, 1);
  assert.equal(mix.memShares.store, 1);
  assert.equal(mix.memShares.alu, 0);
  // Blocks weighted by executions: 0x11b0..0x11c8 and 0x11cd..0x11e5 (8 insns each) 1000 times,
  // the addition at 0x11ca alone 743 times; main's `call strtoul@plt` at 0x106b alone, as
  // callgrind (--skip-plt=yes) charges the 5 PLT instructions to it: 6; 7 blocks run once.
  const blocks = 2000 + 743 + 6 + 7;
  assert.equal(shareAt(mix.bbSizes, 12), 0);
  assert.ok(Math.abs(shareAt(mix.bbSizes, 8) - 2000 / blocks) < 1e-12);
  assert.ok(Math.abs(shareAt(mix.bbSizes, 1) - (743 + 6) / blocks) < 1e-12);
  assert.ok(Math.abs(shareAt(mix.bbSizes, 3) - 4 / blocks) < 1e-12);
  // Branches weighted by executions: the skip (0.257), the back edge (0.999), two never taken.
  const branches = 1000 + 1000 + 2;
  assert.ok(Math.abs(shareAt(mix.takenRates, 0.3) - 1000 / branches) < 1e-12);
  assert.ok(Math.abs(shareAt(mix.takenRates, 1) - 1000 / branches) < 1e-12);
  assert.ok(Math.abs(shareAt(mix.takenRates, 0) - 2 / branches) < 1e-12);
  assert.ok(Math.abs(sum(mix.rawDistances) - 1) < 1e-9);
  // imul's result feeds the add three instructions later; mov %rsi,%rdx then shr at distance 1.
  assert.ok(shareAt(mix.rawDistances, 1) > 0 && shareAt(mix.rawDistances, null) > 0);
  assertAnonymous(mix, [...run.objects.keys()]);
});

/** Runs valgrind; the program's exit status is its own (work's result), so only a missing
 *  valgrind or a missing output file is a failure. */
test("insnMix without branch simulation: taken rates over the branch's own executions", () => {
  const run: CallgrindRun = {
    events: ['Ir'],
    totals: { Ir: 20 },
    // `cmp` then `jne` run 10 times; the jne was taken 5 times, in contexts that ran it 8 times.
    objects: new Map([
      [
        '/x',
        new Map([
          [0x0, cost(10)],
          [0x3, cost(10, 0, 5, 8)],
        ]),
      ],
    ]),
  };
  const code = new Map([
    [0x0, { mnemonic: 'cmp', operands: '%rax,%rdx', length: 3 }],
    [0x3, { mnemonic: 'jne', operands: '0 <x>', length: 2 }],
  ]);
  const mix = insnMix(run, 10, () => code);
  assert.equal(mix.insnsPerReq, 2);
  assert.equal(mix.shares.alu, 0.5);
  assert.equal(mix.shares.cond, 0.5);
  assert.equal(shareAt(mix.takenRates, 0.7), 1);
  assert.equal(shareAt(mix.bbSizes, 2), 1);
  assert.equal(shareAt(mix.rawDistances, null), 1);
  assert.equal(mix.unknownShare, 0);
});

function valgrind(args: string[], out: string): string {
  const r = spawnSync('valgrind', args, { encoding: 'utf8', timeout: 60_000 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    assert.fail('valgrind is not installed: install it (apt-get install valgrind) to run this test');
  }
  if (!existsSync(out)) assert.fail(`valgrind wrote no ${out}: ${r.error?.message ?? r.stderr.slice(-500)}`);
  return readFileSync(out, 'utf8');
}

/** The loop program built in `dir`; its path. */
function buildLoop(dir: string): string {
  writeFileSync(join(dir, 'loop.c'), LOOP_C);
  const exe = join(dir, 'twinloop');
  execFileSync('gcc', ['-O2', '-o', exe, join(dir, 'loop.c')], { stdio: 'ignore' });
  return exe;
}

test('insnMix end to end: gcc, callgrind, objdump on a program whose loop dominates', () => {
  const dir = mkdtempSync(join(tmpdir(), 'twin-mix-'));
  try {
    const exe = buildLoop(dir);
    const callgrind = (n: number, out: string) => {
      const args = [
        '--tool=callgrind',
        '--dump-instr=yes',
        '--collect-jumps=yes',
        '--cache-sim=yes',
        '--branch-sim=yes',
      ];
      return parseCallgrind(valgrind([...args, `--callgrind-out-file=${out}`, exe, String(n)], out));
    };
    const n = 200_000;
    const run = callgrind(n, join(dir, 'cg.n'));
    const mix = insnMix(run, 1);
    InsnMix.parse(mix);
    assert.ok(Math.abs(sum(INSN_CLASSES.map((c) => ({ share: mix.shares[c] }))) - 1) < 1e-9);
    // One imul per iteration; start-up adds a few hundred at most.
    const muls = mix.shares.mul * mix.insnsPerReq;
    assert.ok(muls >= n && muls < n * 1.01, `${muls} mul-class instructions for ${n} iterations`);
    assert.equal(mix.memShares.load, 1);
    assert.equal(mix.memShares.store, 1);
    for (const h of [mix.bbSizes, mix.takenRates, mix.rawDistances]) assert.ok(Math.abs(sum(h) - 1) < 1e-9);
    // The loop's branch taken about a quarter of the time (or three quarters, by the layout).
    assert.ok(shareAt(mix.takenRates, 0.3) + shareAt(mix.takenRates, 0.9) > 0.3);
    assert.ok(mix.unknownShare < 0.01);
    assertAnonymous(mix, [...run.objects.keys(), dir, exe]);

    // The difference of 3n and n iterations is the loop alone: exactly 2n imuls and no start-up.
    const diff = subtractRuns(
      callgrind(3 * 10_000, join(dir, 'cg.3n')),
      callgrind(10_000, join(dir, 'cg.1n')),
    );
    const loopOnly = insnMix(diff, 20_000);
    assert.ok(Math.abs(loopOnly.shares.mul * loopOnly.insnsPerReq - 1) < 1e-9);
    assert.equal(loopOnly.unknownShare, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('twinreuse --instrs counts each instruction as callgrind does: the same mix of the same program', () => {
  const dir = mkdtempSync(join(tmpdir(), 'twin-instrs-'));
  try {
    const exe = buildLoop(dir);
    const chase = '--vex-guest-chase=no';
    // Enough iterations that the start-up's branches (the dynamic linker's, which move with the
    // environment and the address space) weigh little in the taken-rate histogram: at 50,000
    // one bin once came out 0.5 points apart under npm test.
    const n = 200_000;
    const cg = join(dir, 'cg.out');
    const callgrind = parseCallgrind(
      valgrind(
        ['--tool=callgrind', '--dump-instr=yes', '--collect-jumps=yes', '--branch-sim=yes', chase].concat([
          `--callgrind-out-file=${cg}`,
          exe,
          String(n),
        ]),
        cg,
      ),
    );
    const twinreuse = (iterations: number) => {
      const out = join(dir, `tr.${iterations}`);
      const args = ['--tool=twinreuse', '--instrs=yes', chase, `--out-file=${out}`, exe, String(iterations)];
      const r = spawnSync('valgrind', args, {
        env: { ...process.env, VALGRIND_LIB: REUSE_LIB },
        timeout: 60_000,
      });
      assert.ok(existsSync(out), `twinreuse wrote no output: ${String(r.stderr).slice(-300)}`);
      return parseReuse(readFileSync(out, 'utf8'));
    };
    const run = twinreuse(n);
    const [a, b] = [insnMix({ events: [], totals: {}, objects: run.code }, 1), insnMix(callgrind, 1)];
    // Callgrind charges a PLT stub's instructions to its caller; every count else is the same.
    assert.ok(Math.abs(a.insnsPerReq / b.insnsPerReq - 1) < 1e-3, `${a.insnsPerReq} ${b.insnsPerReq}`);
    for (const c of INSN_CLASSES) assert.ok(Math.abs(a.shares[c] - b.shares[c]) < 1e-3, c);
    a.takenRates.forEach((h, i) => assert.ok(Math.abs(h.share - b.takenRates[i].share) < 5e-3, `taken ${i}`));
    a.bbSizes.forEach((h, i) => assert.ok(Math.abs(h.share - b.bbSizes[i].share) < 5e-3, `block ${i}`));
    // A pair's difference is the loop alone: exactly one imul an iteration.
    const loop = combineCode(twinreuse(3 * 10_000).code, twinreuse(10_000).code, -1);
    const loopOnly = insnMix({ events: [], totals: {}, objects: loop }, 20_000);
    assert.ok(Math.abs(loopOnly.shares.mul * loopOnly.insnsPerReq - 1) < 1e-9);
    assert.equal(loopOnly.unknownShare, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a program rebuilt at the same path is disassembled again, not read from the cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'twin-rebuilt-'));
  try {
    const bin = join(dir, 'prog');
    const build = (body: string) => {
      writeFileSync(join(dir, 'prog.c'), `int main(void) { ${body} return 0; }\n`);
      execFileSync('gcc', ['-O0', '-o', bin, join(dir, 'prog.c')]);
    };
    const mnemonics = () => [...disassemble(bin).values()].map((i) => i.mnemonic);
    build('__asm__ volatile("imul %rax, %rax");');
    assert.ok(mnemonics().includes('imul'));
    // Same path, same size, other code: a tuning iteration's rebuilt clone.
    build('__asm__ volatile("add  %rax, %rax");');
    const again = mnemonics();
    assert.ok(!again.includes('imul') && again.includes('add'), again.join(' '));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the hot code per set of a 4 KiB period: the loop's two lines, each run once a request", () => {
  const run = parseCallgrind(fixture('callgrind-loop.out'));
  // A request per iteration: work's loop lies in lines 0x46 and 0x47 of its object (0x11b0
  // to 0x11e8), sets 6 and 7; start-up code ran once in 1,000.
  const sets = codeSets(run, 1000);
  assert.equal(sets.length, 64);
  assert.ok(Math.abs(sets[6] - 1) < 0.01 && Math.abs(sets[7] - 1) < 0.01, `${sets[6]} ${sets[7]}`);
  assert.ok(sets.reduce((a, b) => a + b, 0) - sets[6] - sets[7] < 0.2);
  // Lines run more than once a request count once.
  assert.ok(Math.abs(codeSets(run, 10)[6] - 1) < 1e-9);
});
