import { BLOCK_ALU } from '../synth/body.js';
import { PERIOD_LINES, SET_PERIOD, type ChainSegment } from '../synth/layout.js';
import type { ClassCounts } from '../synth/mix.js';
import { blockOps } from './asm.js';
import { wholeWalks } from '../synth/passes.js';

/** One segment of the code chain in one asm statement: a cycle of code blocks of 64 bytes (or
 *  one per `stride`), each block its operations, then a count down of `k` and a branch to the
 *  next block while it lasts; laid out in walk order (as real code mostly runs: forward, so a
 *  real core's next-line instruction prefetch behaves as it does for the original).
 *  `name(entry, k, mem)` jumps to block `entry` through a table of self-relative offsets (no
 *  relocations) and runs k blocks round the cycle. Each request goes on from where the last
 *  left off, so that a segment's lines are its footprint whatever its blocks a request: cut
 *  into chunks of the blocks a request runs, a segment would hold chunks × blocks lines, and
 *  raising its blocks a request would grow its footprint behind the tuner's back (see
 *  docs/body.md, code segments). The walk's exit is one misprediction a call more, which the
 *  random branches give back. */
function emitSegment(seg: ChainSegment, units: ClassCounts): string[] {
  const n = seg.lines;
  const align = Math.log2(seg.stride ?? 64);
  // A crowd group's blocks, one stride apart, start `offset` bytes into it.
  const pad = seg.stride ? `\\n\\t.skip ${seg.offset ?? 0}, 0xcc` : '';
  // Every other segment's blocks lie at their own lines of the L1s' set periods (see
  // segmentLayout), whatever the sizes of the segments before it.
  const slots = seg.slots ?? [];
  const head = seg.stride
    ? `.p2align ${align}, 0xcc`
    : `.p2align ${Math.log2(SET_PERIOD)}, 0xcc\\n\\t.skip ${(slots[0] ?? 0) * 64}, 0xcc`;
  // The lines left out before each block after the first: its slot's distance from the last's.
  const gap = (i: number) =>
    seg.stride || i === 0 || slots[i] === undefined
      ? 0
      : (slots[i] - slots[i - 1] - 1 + 2 * PERIOD_LINES) % PERIOD_LINES;
  const whole = wholeWalks(seg, seg.rounds?.length ?? 1);
  const out = [
    `void ${seg.name}(uint64_t entry, uint64_t k, uint64_t *mem)`,
    '{',
    `    uint64_t a = entry, b = 0, e, t, si, ax${whole ? ', cx = 0' : ''};`,
    '    __asm__ volatile(',
    // Calls in the blocks push below the red zone.
    '        "subq $128, %%rsp\\n\\t"',
    '        "leaq .Ltab%=(%%rip), %[e]\\n\\t"',
    '        "leaq (%[e],%[s],4), %[e]\\n\\t"',
    '        "movslq (%[e]), %[t]\\n\\t"',
    '        "addq %[e], %[t]\\n\\t"',
    '        "jmp *%[t]\\n\\t"',
    // The blocks live apart from the function's own code, whose lines every call touches.
    // A symbol of their own names them in a profile: `<name>_blocks`. The padding between
    // blocks, never run, is int3: nop padding after a jump's displacement is a run of bytes
    // any program may hold.
    `        ".pushsection .text.twin_chain,\\"ax\\",@progbits\\n\\t${head}\\n\\t.type ${seg.name}_blocks, @function\\n${seg.name}_blocks:\\n\\t"`,
  ];
  const ops = blockOps(units, n, BLOCK_ALU - 2);
  // A counted walk round the cycle from the entry, its jump out taken once, at the end. A
  // segment walked whole (wholeWalks) counts nothing: each block goes on by a conditional
  // branch that tests a zero register (jrcxz, no ALU instruction; a jump where the next block
  // lies out of its reach, past a line between), and the last leaves by a jump: every block's
  // branch has the same few low address bits and the same history of taken branches, so a
  // predictor indexed by them (cachegrind's) would mispredict an exit there.
  const next = (i: number) =>
    !whole
      ? `"subq $1, %[k]\\n\\t" "jnz .Lb%=_${(i + 1) % n}\\n\\t"`
      : i === n - 1
        ? ''
        : `"${gap(i + 1) <= 1 ? 'jrcxz' : 'jmp'} .Lb%=_${i + 1}\\n\\t"`;
  for (let i = 0; i < n; i++)
    out.push(
      `        ".p2align ${align}, 0xcc${pad}${gap(i) ? `\\n\\t.skip ${gap(i) * 64}, 0xcc` : ''}\\n.Lb%=_${i}:\\n\\t" ${ops[i](`.Lb%=_${i}`)} ${next(i)}"jmp .Lend%=\\n.Lb%=_${i}r:\\n\\tret\\n\\t"`,
    );
  out.push(`        ".size ${seg.name}_blocks, . - ${seg.name}_blocks\\n\\t"`);
  out.push('        ".popsection\\n\\t.pushsection .rodata\\n\\t.p2align 2\\n.Ltab%=:\\n\\t"');
  for (let i = 0; i < n; i++) out.push(`        ".long .Lb%=_${i} - .\\n\\t"`);
  out.push(
    '        ".long .Lend%= - .\\n\\t"',
    '        ".popsection\\n"',
    '        ".Lend%=:\\n\\t"',
    '        "addq $128, %%rsp\\n\\t"',
    `        : [a] "+r"(a), [b2] "+r"(b), [e] "=&r"(e), [t] "=&r"(t), [k] "+r"(k), [si] "=&S"(si), [ax] "=&a"(ax)${whole ? ', [cx] "+c"(cx)' : ''}`,
    '        : [s] "r"(entry), [m] "r"(mem)',
    '        : "cc", "memory");',
    '    (void)a;',
    '    (void)b;',
    '    (void)si;',
    '    (void)ax;',
    ...(whole ? ['    (void)cx;'] : []),
    '}',
    '',
  );
  return out;
}

/** chain.c: the code-footprint part of the body, one function per segment. */
export function emitChain(segments: ChainSegment[], units: ClassCounts = { alu: BLOCK_ALU }): string {
  const used = segments.filter((s) => Math.round(s.lines) > 0);
  return [
    '/* chain.c -- the code-footprint part of the body, generated by `twin generate`. */',
    '#include <stdint.h>',
    '',
    ...used.map((s) => `void ${s.name}(uint64_t entry, uint64_t k, uint64_t *mem);`),
    '',
    ...used.flatMap((s) => emitSegment(s, units)),
  ].join('\n');
}
