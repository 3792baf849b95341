import { BLOCK_ALU, branchesPerStep, FILLER_BYTES, STATE_BYTES, type BodyPlan } from '../synth/body.js';
import { CODE_SETS, type InsnClass } from '../model/index.js';
import { MIX_ITER, type ClassCounts } from '../synth/mix.js';

const milli = (x: number) => Math.round(x * 1000);

/** The fewest units a conflict part (ring or segment) runs at a time (see body_burst). */
export const CONFLICT_BURST = 256;

/** Where in its set period a conflict ring's lines (or the code conflict segment's blocks) lie:
 *  not at the start, where page-aligned memory and code (stacks, buffers, aligned allocations,
 *  section starts) crowd set 0 of every cache whose set period is a page or less and would
 *  evict them in 8-way caches too; and data and code apart, so that they share no set of a
 *  unified last level either. */
export const conflictOffset = (stride: number, side: 'data' | 'code') => ((side === 'data' ? 37 : 19) % Math.max(1, stride / 64)) * 64;

/** The mix loop's instructions of each class, the i-th of a class rotating over registers
 *  and the words of two lines of the thread's 4 KiB filler region (loads from its first KiB,
 *  stores to its second, load-ops from its third; `lodsq` walks it from the start): few lines,
 *  hot as the original's own short reuses are, and few for the rest of the body to evict. FP
 *  work adds and subtracts the same value: no growth, no denormals. */
const R = (i: number) => `%[${'abcd'[i % 4]}]`;
const SNIPPET: Partial<Record<InsnClass, (i: number) => string>> = {
  alu: (i) => ['addq %[b], %[a]', 'xorq %[a], %[c]', 'addq %[d], %[b]', 'rolq $5, %[d]'][i % 4],
  mul: (i) => `imulq %[m], ${R(i)}`,
  fp: (i) => ['addsd %[y], %[x]', 'subsd %[y], %[x]', 'addsd %[w], %[z]', 'subsd %[w], %[z]'][i % 4],
  load: (i) => `movq ${8 * (i % 16)}(%[mem]), ${R(i)}`,
  store: (i) => `movq ${R(i)}, ${1024 + 8 * (i % 16)}(%[mem])`,
  loadop: (i) => `addq ${2048 + 8 * (i % 16)}(%[mem]), ${R(i)}`,
  jump: () => 'jmp 2f\n2:',
  indirect: () => 'leaq 2f(%%rip), %[t]\n\tjmp *%[t]\n2:',
  callret: () => 'call 3f',
  string: () => 'lodsq',
  other: () => 'nop',
};

/** `count(c)` instructions of each class from its snippets, classes interleaved evenly (each
 *  class's i-th instruction about i/count of the way through). */
function interleave(snippets: Partial<Record<InsnClass, (i: number) => string>>, count: (c: InsnClass) => number): string[] {
  const items: { at: number; text: string }[] = [];
  for (const [c, f] of Object.entries(snippets) as [InsnClass, (i: number) => string][]) {
    const n = count(c);
    for (let i = 0; i < n; i++) items.push({ at: (i + 0.5) / n, text: f(i) });
  }
  return items.sort((x, y) => x.at - y.at).map((x) => x.text);
}

/** One iteration's instructions as `"...\\n\\t"` string pieces (a call is one unit of the
 *  call/return pair's two). */
function mixIteration(units: ClassCounts): string[] {
  const items = interleave(SNIPPET, (c) => (c === 'callret' ? Math.floor((units.callret ?? 0) / 2) : Math.round(units[c] ?? 0)));
  const head = (units.string ?? 0) > 0 ? ['movq %[mem], %[si]'] : [];
  return [...head, ...items].map((t) => `"${t.replace(/\n/g, '\\n')}\\n\\t"`);
}

/** The mix loop: one asm statement, every register it writes an output. Calls go below the red
 *  zone to a return at the statement's end; the conditional branches test the overflow flag
 *  of the loop counter's decrement (never set: never taken). */
export function emitMix(units: ClassCounts): string {
  const body = mixIteration(units);
  const conds = Math.round(units.cond ?? 0);
  const calls = Math.floor((units.callret ?? 0) / 2) > 0;
  const lines = [
    ...(calls ? ['"subq $128, %%rsp\\n\\t"'] : []),
    '"1:\\n\\t"',
    ...body,
    '"subq $1, %[n]\\n\\t"',
    ...Array.from({ length: conds }, () => '"jo 9f\\n\\t"'),
    '"jnz 1b\\n"',
    '"9:\\n\\t"',
    ...(calls ? ['"addq $128, %%rsp\\n\\t"', '"jmp 4f\\n"', '"3:\\n\\t"', '"ret\\n"', '"4:\\n\\t"'] : []),
  ];
  return `/* The instruction mix: ${Object.entries(units).filter(([, v]) => v).map(([k, v]) => `${v} ${k}`).join(', ')} per iteration. */
static PART void ${MIX_PART}(uint64_t *mem, uint64_t n, twin_body_ctx *ctx)
{
    uint64_t a = ctx->sink, b = a ^ 1, c = a ^ 2, d = a ^ 3, t, si, ax;
    const uint64_t mul = 0x9e3779b97f4a7c15u;
    double x = 1.0, y = 0.5, z = 0.25, w = 0.125;
    if (n == 0)
        return;
    __asm__ volatile(
        ${lines.join('\n        ')}
        : [n] "+r"(n), [a] "+r"(a), [b] "+r"(b), [c] "+r"(c), [d] "+r"(d), [t] "=&r"(t), [si] "=&S"(si), [ax] "=&a"(ax),
          [x] "+x"(x), [y] "+x"(y), [z] "+x"(z), [w] "+x"(w)
        : [mem] "r"(mem), [m] "r"(mul)
        : "cc", "memory");
    (void)t;
    (void)si;
    (void)ax;
    ctx->sink = a ^ b ^ c ^ d ^ (uint64_t)(x + y + z + w);
}
`;
}

/** A code block's operations, 3 to 5 bytes each: ALU work on two registers, loads, stores and
 *  load-ops in the thread's L1-resident filler region, multiplies, a test and a conditional
 *  branch back to the block's start that the test makes never taken (it clears OF), a call
 *  to a return in the segment's function, `lodsq` from the filler (its pointer set at the
 *  block's start); interleaved. */
const BLOCK_SNIPPET: Partial<Record<InsnClass, (i: number, block: string) => string>> = {
  alu: (i) => ['addq $1, %[a]', 'xorq %[a], %[b2]', 'rolq $3, %[a]', 'addq %[b2], %[a]', 'subq $7, %[b2]'][i % 5],
  // One-byte displacements keep each at 4 bytes; the chain gets a pointer 128 bytes in.
  load: (i) => `movq ${8 * (i % 8)}(%[m]), %[b2]`,
  store: (i) => `movq %[a], ${64 + 8 * (i % 8)}(%[m])`,
  loadop: (i) => `addq ${-64 + 8 * (i % 8)}(%[m]), %[a]`,
  mul: () => 'imulq %[b2], %[a]',
  cond: (_, block) => `testq %[a], %[a]\\n\\tjo ${block}`,
  callret: () => 'call .Lret%=',
  string: () => 'lodsq',
};

/** The operations of `blocks` code blocks: each class's share spread evenly over all of them
 *  (a block holds about the sum of `units`, at most `most`), as asm string pieces per block,
 *  the string pointer's reset first where there is string work. */
function blockOps(units: ClassCounts, blocks: number, most = BLOCK_ALU): ((label: string) => string)[] {
  const tags = Object.fromEntries(Object.keys(BLOCK_SNIPPET).map((c) => [c, (i: number) => `${c} ${i}`]));
  const seq = interleave(tags, (c) => Math.round((units[c] ?? 0) * blocks));
  const reset = (units.string ?? 0) > 0 ? ['"movq %[m], %[si]\\n\\t"'] : [];
  return Array.from({ length: blocks }, (_, b) => {
    const mine = seq.slice(Math.floor((b * seq.length) / blocks), Math.floor(((b + 1) * seq.length) / blocks)).slice(0, most);
    return (label: string) =>
      [...reset, ...mine.map((t) => {
        const [c, i] = t.split(' ');
        return `"${BLOCK_SNIPPET[c as InsnClass]!(Number(i), label)}\\n\\t"`;
      })].join(' ');
  });
}

/** A part of the body that runs as its own function, named so that a per-function profile of
 *  the clone (callgrind's) tells what each part costs: `twin_data_<bin>` walks the data ring
 *  of a reuse bin, `twin_code_<bin>` runs the code segment of a footprint bin, `..._conflict`
 *  the conflict ring and segment. */
export const partName = (side: 'data' | 'code', bin: number | 'conflict') => `twin_${side}_${bin}`;
export const BRANCH_PART = 'twin_branch';
export const MIX_PART = 'twin_mix';

export interface ChainSegment {
  name: string;
  lines: number;
  loadsPerReq: number;
  /** The conflict segment: its few blocks one set period apart, a cycle walked k blocks a
   *  request from a shared position, so that every request cycles through the same few lines
   *  of one cache set. */
  stride?: number;
  /** Where each of a segment's blocks lies in the 16 KiB set period, in lines, in walk order
   *  (see segmentLayout): each after the last, the lines between them left out. */
  slots?: number[];
}

/** The largest set period of the sweep's L1s (128 KiB, 8 ways). */
const SET_PERIOD = 16384;

/** One segment of the code chain in one asm statement: a cycle of code blocks of 64 bytes (or
 *  one per `stride`), each block its operations, then a count down of `k` and a branch to the
 *  next block while it lasts; laid out in walk order (as real code mostly runs: forward, so a
 *  real core's next-line instruction prefetch behaves as it does for the original).
 *  `name(entry, k, mem)` jumps to block `entry` through a table of self-relative offsets (no
 *  relocations) and runs k blocks round the cycle. Each request goes on from where the last
 *  left off, so that a segment's lines are its footprint whatever its blocks a request: cut
 *  into chunks of the blocks a request runs, a segment held as many lines as its chunks
 *  times those blocks, and redis's clone, its blocks a request raised from 69 to 76, went from
 *  345 lines to 380 where the tuner asked for 359 (its 32 KiB code misses from 92.8 a request
 *  to 124.9 against 105.6). The walk's exit is one misprediction a call more, which the random
 *  branches give back. */
function emitSegment(seg: ChainSegment, units: ClassCounts): string[] {
  const n = seg.lines;
  const align = Math.log2(seg.stride ?? 64);
  // The conflict segment's blocks, one set period apart, start a way into it.
  const pad = seg.stride ? `\\n\\t.skip ${conflictOffset(seg.stride, 'code')}, 0xcc` : '';
  // Every other segment's blocks lie at their own lines of the L1s' set periods (see
  // segmentLayout), whatever the sizes of the segments before it.
  const slots = seg.slots ?? [];
  const head = seg.stride ? `.p2align ${align}, 0xcc` : `.p2align ${Math.log2(SET_PERIOD)}, 0xcc\\n\\t.skip ${(slots[0] ?? 0) * 64}, 0xcc`;
  // The lines left out before each block after the first: its slot's distance from the last's.
  const gap = (i: number) => (seg.stride || i === 0 || slots[i] === undefined ? 0 : (slots[i] - slots[i - 1] - 1 + 2 * PERIOD_LINES) % PERIOD_LINES);
  const out = [
    `void ${seg.name}(uint64_t entry, uint64_t k, uint64_t *mem)`,
    '{',
    '    uint64_t a = entry, b = 0, e, t, si, ax;',
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
  // A counted walk round the cycle from the entry, its jump out taken once, at the end.
  for (let i = 0; i < n; i++)
    out.push(`        ".p2align ${align}, 0xcc${pad}${gap(i) ? `\\n\\t.skip ${gap(i) * 64}, 0xcc` : ''}\\n.Lb%=_${i}:\\n\\t" ${ops[i](`.Lb%=_${i}`)} "subq $1, %[k]\\n\\t" "jnz .Lb%=_${(i + 1) % n}\\n\\t" "jmp .Lend%=\\n\\t"`);
  out.push(`        ".size ${seg.name}_blocks, . - ${seg.name}_blocks\\n\\t"`);
  out.push('        ".popsection\\n\\t.pushsection .rodata\\n\\t.p2align 2\\n.Ltab%=:\\n\\t"');
  for (let i = 0; i < n; i++) out.push(`        ".long .Lb%=_${i} - .\\n\\t"`);
  out.push(
    '        ".long .Lend%= - .\\n\\t"',
    '        ".popsection\\n"',
    '        ".Lret%=:\\n\\t"',
    '        "ret\\n"',
    '        ".Lend%=:\\n\\t"',
    '        "addq $128, %%rsp\\n\\t"',
    '        : [a] "+r"(a), [b2] "+r"(b), [e] "=&r"(e), [t] "=&r"(t), [k] "+r"(k), [si] "=&S"(si), [ax] "=&a"(ax)',
    '        : [s] "r"(entry), [m] "r"(mem)',
    '        : "cc", "memory");',
    '    (void)a;',
    '    (void)b;',
    '    (void)si;',
    '    (void)ax;',
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

/** The lines of the 16 KiB set period (SET_PERIOD): the sets of a 64 KiB 4-way L1. */
const PERIOD_LINES = SET_PERIOD / 64;

/** How many ways of the two L1s the segments may fill in a set, with what is already there:
 *  the 32 KiB 8-way L1's (a set of the 4 KiB period) and the 64 KiB 4-way one's (a set of the
 *  16 KiB period), each less half a way, the skeleton's measure being a sum of lines' runs. */
const ROOM = { coarse: 8 - 0.5, fine: 4 - 0.5 };

/** A line run once in this many requests or more often holds its way between two runs of the
 *  other lines of its set: it counts as a whole line in that set; a colder one, in proportion. */
const WARM_RUNS = 4;

/** A segment whose lines count for less than this (WARM_RUNS) is laid end to end: its lines
 *  hold no way between two runs, and each left-out line spreads the code over more pages
 *  (redis's clone, every set full, its cold segment's 2,652 lines each a period apart: 17.8
 *  MB of code, 54% more CPU time a request in real runs). */
const COLD = 0.5;

/** Where each block of each segment lies in the 16 KiB set period, in lines, in walk order.
 *  Hottest segment first (its blocks a request over its lines, at most 1), each block goes in
 *  the first line from the last block's on (from the least filled line, for the first) whose
 *  sets in the two L1s have a way left (ROOM), counting the skeleton's measured hot code
 *  (`outside`, CODE_SETS sets, spread evenly over the 256 sets of the 16 KiB period), the
 *  code conflict segment's lines (`occupied`) and the blocks already placed (each as warm as
 *  its segment: WARM_RUNS); where no line within 64 has, or the segment is cold (COLD), in
 *  the next line. Each is laid out at its `segs` lines, then cut to, or grown after them to,
 *  its `lines`. Laid end to
 *  end from a start, a segment of 129 lines run 67 blocks a request (each line every other
 *  request) put two or three lines in each of memcached's clone's 64 sets, and seven sets
 *  that the skeleton filled with 5 to 7 hot lines overflowed: its 32 KiB code misses stayed
 *  at 10.9 to 16.5 a request against 7.5 through seven iterations, each move of a segment's
 *  lines moving which sets overflowed. */
export function segmentLayout(segs: { lines: number; loadsPerReq: number }[], outside?: number[], occupied: { set: number; lines: number }[] = [], lines: number[] = segs.map((q) => q.lines)): number[][] {
  const fine = new Array<number>(PERIOD_LINES).fill(0);
  for (const o of occupied) fine[o.set % PERIOD_LINES] += o.lines;
  const skeleton = outside?.length === CODE_SETS ? outside : new Array<number>(CODE_SETS).fill(0);
  const coarse = [...skeleton];
  fine.forEach((x, i) => (coarse[i % CODE_SETS] += x));
  const perFine = PERIOD_LINES / CODE_SETS;
  const fineLoad = (l: number) => fine[l] + skeleton[l % CODE_SETS] / perFine;
  const heat = (q: { lines: number; loadsPerReq: number }) => Math.min(1, q.loadsPerReq / Math.max(1, q.lines));
  const out: number[][] = segs.map(() => []);
  const order = segs.map((_, k) => k).sort((a, b) => heat(segs[b]) - heat(segs[a]) || a - b);
  /** `n` more blocks of segment k, each after its last. */
  const place = (k: number, n: number) => {
    const w = Math.min(1, heat(segs[k]) * WARM_RUNS);
    const fits = (l: number) => coarse[l % CODE_SETS] + w <= ROOM.coarse && fineLoad(l) + w <= ROOM.fine;
    for (let j = 0; j < n; j++) {
      const from = out[k].length ? (out[k][out[k].length - 1] + 1) % PERIOD_LINES : -1;
      let l = from;
      if (from < 0) {
        // The first block: the least filled line.
        l = 0;
        const load = (x: number) => coarse[x % CODE_SETS] / ROOM.coarse + fineLoad(x) / ROOM.fine;
        for (let x = 1; x < PERIOD_LINES; x++) if (load(x) < load(l) - 1e-9) l = x;
      } else if (w >= COLD) {
        // A warm block: the first line with room within one 4 KiB period on (every set of the
        // 32 KiB L1 once); none with room, the next line.
        for (let d = 0; d < CODE_SETS; d++) {
          if (fits((from + d) % PERIOD_LINES)) {
            l = (from + d) % PERIOD_LINES;
            break;
          }
        }
      }
      out[k].push(l);
      coarse[l % CODE_SETS] += w;
      fine[l] += w;
    }
  };
  // Each segment as laid out at `segs`' lines; then, where it has more lines, the rest after them.
  for (const k of order) place(k, Math.round(segs[k].lines));
  for (const k of order) place(k, Math.max(0, Math.round(lines[k]) - out[k].length));
  return out.map((slots, k) => slots.slice(0, Math.max(0, Math.round(lines[k]))));
}

/** The chain's segments: the footprint bins' and, when it runs, the code conflict segment,
 *  each footprint segment's blocks at their lines of the 16 KiB period (segmentLayout). The
 *  segments are laid out as in `nominal` (the plan before tuning, where it has the segment),
 *  each then cut to its lines or grown after them, so that the tuner's moves of one segment's
 *  lines or of any blocks a request move no other block. */
export function chainSegments(plan: BodyPlan, skeletonSets?: number[], nominal: BodyPlan = plan): ChainSegment[] {
  const bins = plan.segments.map((r, bin) => ({ bin, lines: Math.round(r.lines), loadsPerReq: r.loadsPerReq })).filter((s) => s.lines > 0);
  // The conflict segment's blocks all lie in one set, by its stride.
  const n = nominal.codeConflict;
  const conflict = n.loadsPerReq > 0 ? [{ set: conflictOffset(n.stride, 'code') / 64, lines: n.lines * Math.min(1, n.loadsPerReq / n.lines) }] : [];
  const slots = segmentLayout(
    bins.map((s) => (Math.round(nominal.segments[s.bin]?.lines ?? 0) > 0 ? nominal.segments[s.bin] : s)),
    skeletonSets,
    conflict,
    bins.map((s) => s.lines),
  );
  return [
    ...bins.map((s, k) => ({ name: partName('code', s.bin), lines: s.lines, loadsPerReq: s.loadsPerReq, slots: slots[k] })),
    ...(plan.codeConflict.loadsPerReq > 0 ? [{ name: partName('code', 'conflict'), ...plan.codeConflict }] : []),
  ];
}

/** A ring walk as one asm statement with no control flow: the whole loads first, in line (in
 *  a loop of 16 only past 64 of them), then, where `sel` is set, one more through conditional
 *  moves (else the load reads `dummy`, an L1-resident word), so that a fraction of a load per
 *  request costs no branch; the cursor is read and written back in the asm. */
function emitRingWalk(name: string, loadsPerReq: number): string {
  const whole = Math.floor(loadsPerReq + 1e-9);
  const loop = whole > 64 ? Math.floor(whole / 16) : 0;
  const inline = whole - 16 * loop;
  const ld = '"movq (%[p]), %[p]\\n\\t"';
  const lines = [
    '"movq (%[cur]), %[p]\\n\\t"',
    ...(loop ? [`"movq $${loop}, %[c]\\n"`, '"1:\\n\\t"', ...Array.from({ length: 16 }, () => ld), '"subq $1, %[c]\\n\\t"', '"jnz 1b\\n\\t"'] : []),
    ...Array.from({ length: inline }, () => ld),
    '"movq %[d], %[q]\\n\\t"', '"testq %[sel], %[sel]\\n\\t"', '"cmovnzq %[p], %[q]\\n\\t"', '"movq (%[q]), %[q]\\n\\t"', '"cmovnzq %[q], %[p]\\n\\t"',
    '"movq %[p], (%[cur])\\n\\t"',
  ];
  return `static PART LINE_START void ${name}(uint64_t *cur, uint64_t sel, uint64_t *dummy)
{
    uint64_t p, q, c;
    __asm__ volatile(
        ${lines.join('\n        ')}
        : [p] "=&r"(p), [q] "=&r"(q), [c] "=&r"(c)
        : [cur] "r"(cur), [sel] "r"(sel), [d] "r"(dummy)
        : "cc", "memory");
    (void)q;
    (void)c;
}
`;
}

/** The random branches, `n` PRNG steps a call (see branchesPerStep): taken (skipping an
 *  increment) with probability p on bits no predictor can foresee, so it misses about
 *  min(p, 1 - p) of them. */
function emitBranches(p: number): string {
  const step = ['"1:\\n\\t"', '"imulq %[mul], %[x]\\n\\t"', '"addq $12345, %[x]\\n\\t"'];
  const tests =
    branchesPerStep(p) === 8
      ? Array.from({ length: 8 }, (_, k) => [`"btq $${56 - 3 * k}, %[x]\\n\\t"`, '"jc 2f\\n\\t"', '"addq $1, %[acc]\\n"', '"2:\\n\\t"']).flat()
      : ['"movq %[x], %[t]\\n\\t"', '"shrq $32, %[t]\\n\\t"', '"cmpq %[thr], %[t]\\n\\t"', '"jb 2f\\n\\t"', '"addq $1, %[acc]\\n"', '"2:\\n\\t"'];
  return `static PART uint64_t ${BRANCH_PART}(uint64_t x, uint64_t n, uint64_t *sink)
{
    uint64_t acc = *sink, t = 0;
    const uint64_t mul = 6364136223846793005u, thr = HARD_THRESHOLD;
    if (n == 0)
        return x;
    __asm__ volatile(
        ${[...step, ...tests, '"subq $1, %[n]\\n\\t"', '"jnz 1b\\n\\t"'].join('\n        ')}
        : [x] "+r"(x), [n] "+r"(n), [acc] "+r"(acc), [t] "+r"(t)
        : [mul] "r"(mul), [thr] "r"(thr)
        : "cc");
    (void)t;
    *sink = acc;
    return x;
}
`;
}

/** The bytes of a ring walk's slot: 64 loads in line of at most 4 bytes each, the fraction's
 *  five instructions, the cursor's load and store (see emitRingWalk); five lines, so that the
 *  walks' first lines fall in different sets. */
export const RING_SLOT = 320;

/** The bytes of the mix loop's slot: an iteration's instructions (MIX_ITER, and a few the
 *  rounding of its classes adds) at 9 bytes at most (an indirect jump and its target's
 *  address), and its set-up. */
export const MIX_SLOT = 64 * Math.ceil((9 * (MIX_ITER + 16) + 160) / 64);

/** The bytes of clone_body's slot, by what it calls: each ring walk's and each segment's call
 *  with its rate as an immediate (about 56 and 68 bytes in a clone of eight rings and three
 *  segments, 1,217 bytes in all), with room to spare. */
export const bodySlot = (rings: number, segs: number) => 64 * Math.ceil((640 + 64 * rings + 96 * segs) / 64);

/** The body of clone.c. The rings and the chain's cursors are the process's, shared by its
 *  serving threads (laid out once, by the first of them); each thread keeps its own state at
 *  the start of its body memory (PRNG, fractional-count accumulators) and its filler region.
 *  Each part is one asm statement with no control flow in or out of it; every register it
 *  writes is an output. */
export function emitBody(plan: BodyPlan): string {
  const rings = plan.rings.flatMap((r, bin) => (Math.round(r.lines) > 0 ? [{ name: partName('data', bin), lines: Math.round(r.lines), loadsPerReq: r.loadsPerReq }] : []));
  const segs = chainSegments(plan);
  const arr = (xs: number[]) => `{ ${(xs.length ? xs : [0]).map((x) => `${x}u`).join(', ')} }`;
  const ringCalls = rings.map((r, i) => `    ${r.name}(&ring_cur[${i}], body_frac(&st[ST_ACC_RING + ${i}], ${milli(r.loadsPerReq % 1)}u), filler);`);
  const segCalls = segs.map(
    (s, i) => `    if ((n = ${s.stride ? 'body_burst' : 'body_units'}(&st[ST_ACC_SEG + ${i}], ${milli(s.loadsPerReq)}u)) != 0)
        ${s.name}(__atomic_fetch_add(&seg_cur[${i}], n, __ATOMIC_RELAXED) % ${s.lines}u, n, filler + 16);`,
  );
  return `#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Body parts per request, in thousandths (carried from request to request): mix-loop
 * iterations, PRNG steps of the random branches, loads of each data ring (one per
 * reuse-distance bin), blocks of each code segment (one per footprint bin). Each part is a function of its own (twin_data_<bin>, twin_code_<bin>, twin_branch, twin_mix),
 * never inlined, so that a per-function profile of the clone says what each part costs. */
#define N_RINGS ${rings.length}u
#define N_SEGS ${segs.length}u
#define STATE_BYTES ${STATE_BYTES}u
#define FILLER_BYTES ${FILLER_BYTES}u
#define HARD_THRESHOLD ${Math.round(plan.hardP * 2 ** 32)}u
/* Never inlined, and never folded into an identical function (GCC's -fipa-icf would merge the
 * ring walks), so that each part keeps its own name and code. */
#if defined(__clang__)
#define PART __attribute__((noinline))
#else
#define PART __attribute__((noipa))
#endif
#define UNUSED __attribute__((unused)) /* a body with no rings or no segments */
/* The layout: each ring walk in a slot of ${RING_SLOT} bytes, then the conflict walk and the
 * random branches (their code the same whatever the knobs), then clone_body in a slot sized
 * by its calls, then the mix loop, then the cold helpers: in this order (the build keeps it:
 * -fno-toplevel-reorder), each slot padded to its end (SLOT_END; an assembler error if its
 * function outgrew it). A part's lines then lie where they lay whatever the knobs, and tuning
 * sees the misses its knobs make, not those of code shifted across line boundaries. */
#define LINE_START __attribute__((aligned(64)))
#define SLOT_END(fn, bytes) __asm__(".pushsection .text\\n\\t.org " #fn " + " #bytes ", 0xcc\\n\\t.popsection")
static const uint64_t hard_milli = ${milli(plan.hardBranchesPerReq / branchesPerStep(plan.hardP))}u; /* PRNG steps */
static const uint64_t mix_milli = ${milli(plan.mix.itersPerReq)}u;
static const UNUSED uint64_t ring_lines[] = ${arr(rings.map((r) => r.lines))};

/* Shared by the serving threads: each ring's cursor, each segment's position. */
static const unsigned n_rings = N_RINGS;
static uint64_t ring_cur[N_RINGS ? N_RINGS : 1], conflict_cur;
/* The conflict ring: lines one set period apart, all in one set of a low-associativity L1. */
#define CONFLICT_LINES ${plan.conflict.lines}u
#define CONFLICT_STRIDE ${plan.conflict.stride}u
#define CONFLICT_OFFSET ${conflictOffset(plan.conflict.stride, 'data')}u
#define CONFLICT_BURST ${CONFLICT_BURST}u
static const uint64_t conflict_milli = ${milli(plan.conflict.loadsPerReq)}u;
static UNUSED uint64_t seg_cur[N_SEGS ? N_SEGS : 1];
static pthread_once_t rings_once = PTHREAD_ONCE_INIT;

/* State words at the start of a thread's body memory. */
enum { ST_INIT, ST_PRNG, ST_ACC_HARD, ST_ACC_MIX, ST_ACC_CONFLICT, ST_ACC_RING, ST_ACC_SEG = ST_ACC_RING + (N_RINGS ? N_RINGS : 1) };

${segs.map((s) => `void ${s.name}(uint64_t entry, uint64_t k, uint64_t *mem);`).join('\n')}

/* The helpers, defined after the parts they serve (see the layout above). */
static uint64_t body_rand(uint64_t *x);
static void body_ring_init(uint64_t *ring, uint64_t lines, uint64_t *rng);
static void body_no_memory(void);
static void body_rings_init(void);
static void clone_body_init(twin_body_ctx *ctx);
static uint64_t body_units(uint64_t *acc, uint64_t milli);
static UNUSED uint64_t body_frac(uint64_t *acc, uint64_t milli);
static uint64_t body_burst(uint64_t *acc, uint64_t milli);
static PART void ${MIX_PART}(uint64_t *mem, uint64_t n, twin_body_ctx *ctx);

${rings.map((r) => `${emitRingWalk(r.name, r.loadsPerReq)}SLOT_END(${r.name}, ${RING_SLOT});\n`).join('\n')}
/* The conflict ring: n loads round its cycle, counted (a burst's one loop exit). */
static PART void ${partName('data', 'conflict')}(uint64_t *cur, uint64_t n)
{
    uint64_t p;
    __asm__ volatile(
        "movq (%[cur]), %[p]\\n"
        "1:\\n\\t"
        "movq (%[p]), %[p]\\n\\t"
        "subq $1, %[n]\\n\\t"
        "jnz 1b\\n\\t"
        "movq %[p], (%[cur])\\n\\t"
        : [p] "=&r"(p), [n] "+r"(n)
        : [cur] "r"(cur)
        : "cc", "memory");
}
${emitBranches(plan.hardP)}
static LINE_START void clone_body(uint32_t op, twin_body_ctx *ctx)
{
    (void)op; /* every request type has the same body: the profile's counters are overall */
    if (ctx->mem_bytes < STATE_BYTES + FILLER_BYTES || ctx->mem == NULL)
        return;
    uint64_t *st = ctx->mem;
    uint64_t *filler = (uint64_t *)((char *)ctx->mem + STATE_BYTES);
    if (!st[ST_INIT])
        clone_body_init(ctx);
    uint64_t n;
${[...segCalls, ...ringCalls].join('\n')}
    if (conflict_milli && (n = body_burst(&st[ST_ACC_CONFLICT], conflict_milli)) != 0)
        ${partName('data', 'conflict')}(&conflict_cur, n);
    (void)n;
    st[ST_PRNG] = ${BRANCH_PART}(st[ST_PRNG], body_units(&st[ST_ACC_HARD], hard_milli), &ctx->sink);
    ${MIX_PART}(filler, body_units(&st[ST_ACC_MIX], mix_milli), ctx);
}
SLOT_END(clone_body, ${bodySlot(rings.length, segs.length)});

${emitMix(plan.mix.units)}SLOT_END(${MIX_PART}, ${MIX_SLOT});
static uint64_t body_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One cycle through every line of the ring (Sattolo's algorithm), then each line's first
 * word becomes a pointer to the next line of the cycle. */
static void body_ring_init(uint64_t *ring, uint64_t lines, uint64_t *rng)
{
    for (uint64_t i = 0; i < lines; i++)
        ring[i * 8] = i;
    for (uint64_t i = lines - 1; i > 0; i--) {
        uint64_t j = body_rand(rng) % i, t = ring[i * 8];
        ring[i * 8] = ring[j * 8];
        ring[j * 8] = t;
    }
    for (uint64_t i = 0; i < lines; i++)
        ring[i * 8] = (uint64_t)(uintptr_t)&ring[ring[i * 8] * 8];
}

/* The walks follow pointers without a test: without their memory the body cannot run. */
static void body_no_memory(void)
{
    fputs("twin clone: no memory for the body's rings: free memory or lower the profile's ring sizes\\n", stderr);
    exit(2);
}

static void body_rings_init(void)
{
    uint64_t lines = 0, rng = 0x9e3779b97f4a7c15u;
    for (unsigned i = 0; i < n_rings; i++)
        lines += ring_lines[i];
    uint64_t *r = lines ? aligned_alloc(64, lines * 64) : NULL;
    if (lines && !r)
        body_no_memory();
    for (unsigned i = 0; i < n_rings; i++) {
        body_ring_init(r, ring_lines[i], &rng);
        __atomic_store_n(&ring_cur[i], (uint64_t)(uintptr_t)r, __ATOMIC_RELAXED);
        r += ring_lines[i] * 8;
    }
    if (conflict_milli) {
        char *c = aligned_alloc(CONFLICT_STRIDE, (uint64_t)CONFLICT_LINES * CONFLICT_STRIDE);
        if (!c)
            body_no_memory();
        for (uint64_t i = 0; i < CONFLICT_LINES; i++)
            *(uint64_t *)(c + CONFLICT_OFFSET + i * CONFLICT_STRIDE) = (uint64_t)(uintptr_t)(c + CONFLICT_OFFSET + (i + 1) % CONFLICT_LINES * CONFLICT_STRIDE);
        __atomic_store_n(&conflict_cur, (uint64_t)(uintptr_t)(c + CONFLICT_OFFSET), __ATOMIC_RELAXED);
    }
}

/* Once per serving thread, before its first request (and once per process for the rings):
 * memory is laid out here, so that its cost is start-up work, not per-request work. */
static void clone_body_init(twin_body_ctx *ctx)
{
    uint64_t *st = ctx->mem;
    pthread_once(&rings_once, body_rings_init);
    if (st == NULL || ctx->mem_bytes < STATE_BYTES + FILLER_BYTES || st[ST_INIT])
        return;
    st[ST_PRNG] = ctx->rng | 1;
    st[ST_INIT] = 1;
}

/* Whole units of a part this request: the per-request rate in thousandths, with the
 * remainder carried to the next request. */
static uint64_t body_units(uint64_t *acc, uint64_t milli)
{
    uint64_t n;
    *acc += milli;
    n = *acc / 1000;
    *acc %= 1000;
    return n;
}

/* Whether this request takes one more unit of a part whose rate has a fraction (in
 * thousandths): as body_units, without a branch. */
static UNUSED uint64_t body_frac(uint64_t *acc, uint64_t milli)
{
    uint64_t more;
    *acc += milli;
    more = *acc >= 1000;
    *acc -= 1000 & -more;
    return more;
}

/* Whole units of a conflict part, run in bursts of at least CONFLICT_BURST: the
 * rate carried in thousandths until a burst is due. Its lines miss a cache of few
 * ways on every use; in one of more ways, only where a request's other lines
 * evicted them since their last burst, and bursts make that rare. */
static uint64_t body_burst(uint64_t *acc, uint64_t milli)
{
    if (*acc + milli >= CONFLICT_BURST * 1000u)
        return body_units(acc, milli);
    *acc += milli;
    return 0;
}`;
}
