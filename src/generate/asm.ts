import type { InsnClass } from '../model/index.js';
import { MAX_WALK_CHAINS } from '../synth/chains.js';
import { BLOCK_ALU, branchesPerStep } from '../synth/body.js';
import { BRANCH_PART, MIX_PART } from '../synth/layout.js';
import type { ClassCounts } from '../synth/mix.js';

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
function interleave(
  snippets: Partial<Record<InsnClass, (i: number) => string>>,
  count: (c: InsnClass) => number,
): string[] {
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
  const items = interleave(SNIPPET, (c) =>
    c === 'callret' ? Math.floor((units.callret ?? 0) / 2) : Math.round(units[c] ?? 0),
  );
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
  return `/* The instruction mix: ${Object.entries(units)
    .filter(([, v]) => v)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ')} per iteration. */
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
 *  to a return at the block's end (`<block>r`, in the block's own line: a return elsewhere
 *  is a line that every block calling it shares, which in a crowd group's set made one more
 *  line than its ways), `lodsq` from the filler (its pointer set at the block's start);
 *  interleaved. */
const BLOCK_SNIPPET: Partial<Record<InsnClass, (i: number, block: string) => string>> = {
  alu: (i) =>
    ['addq $1, %[a]', 'xorq %[a], %[b2]', 'rolq $3, %[a]', 'addq %[b2], %[a]', 'subq $7, %[b2]'][i % 5],
  // One-byte displacements keep each at 4 bytes; the chain gets a pointer 128 bytes in.
  load: (i) => `movq ${8 * (i % 8)}(%[m]), %[b2]`,
  store: (i) => `movq %[a], ${64 + 8 * (i % 8)}(%[m])`,
  loadop: (i) => `addq ${-64 + 8 * (i % 8)}(%[m]), %[a]`,
  mul: () => 'imulq %[b2], %[a]',
  cond: (_, block) => `testq %[a], %[a]\\n\\tjo ${block}`,
  callret: (_, block) => `call ${block}r`,
  string: () => 'lodsq',
};

/** The operations of `blocks` code blocks: each class's share spread evenly over all of them
 *  (a block holds about the sum of `units`, at most `most`), as asm string pieces per block,
 *  the string pointer's reset first in a block with string work. */
export function blockOps(
  units: ClassCounts,
  blocks: number,
  most = BLOCK_ALU,
): ((label: string) => string)[] {
  const tags = Object.fromEntries(Object.keys(BLOCK_SNIPPET).map((c) => [c, (i: number) => `${c} ${i}`]));
  const seq = interleave(tags, (c) => Math.round((units[c] ?? 0) * blocks));
  const reset = '"movq %[m], %[si]\\n\\t"';
  return Array.from({ length: blocks }, (_, b) => {
    const mine = seq
      .slice(Math.floor((b * seq.length) / blocks), Math.floor(((b + 1) * seq.length) / blocks))
      .slice(0, most);
    const strings = mine.some((t) => t.startsWith('string ')) ? [reset] : [];
    return (label: string) =>
      [
        ...strings,
        ...mine.map((t) => {
          const [c, i] = t.split(' ');
          return `"${BLOCK_SNIPPET[c as InsnClass]!(Number(i), label)}\\n\\t"`;
        }),
      ].join(' ');
  });
}

/** A ring walk as one asm statement with no control flow: the whole loads first, in line (in
 *  a loop of 16 only past 64 of them), then one more through conditional moves where the
 *  fraction carried in `acc` (65,536ths) passes a whole (else the load reads `dummy`, an
 *  L1-resident word), so that a fraction of a load per request costs no branch; the cursor
 *  is read and written back in the asm. The fraction is added by the walk itself and its
 *  carry selects: no instructions of the caller's work out whether this request takes one.
 *  With `chains` cursors (spread evenly round the ring, `cur[0]` to `cur[chains - 1]`), the
 *  loads go to each in turn, every cursor a step a round and the fraction a round for all of
 *  them: the cursors keep their spacing, so every line's reuse distance is the ring's still,
 *  while a core overlaps `chains` loads (see synth/chains.ts). */
export function emitRingWalk(name: string, loadsPerReq: number, chains = 1): string {
  if (chains > 1) return emitChainsWalk(name, loadsPerReq, chains);
  const whole = Math.floor(loadsPerReq + 1e-9);
  const frac = Math.min(0xffff, Math.round((loadsPerReq - whole) * 0x10000));
  const loop = whole > 64 ? Math.floor(whole / 16) : 0;
  const inline = whole - 16 * loop;
  const ld = '"movq (%[p]), %[p]\\n\\t"';
  const lines = [
    '"movq (%[cur]), %[p]\\n\\t"',
    ...(loop
      ? [
          `"movq $${loop}, %[c]\\n"`,
          '"1:\\n\\t"',
          ...Array.from({ length: 16 }, () => ld),
          '"subq $1, %[c]\\n\\t"',
          '"jnz 1b\\n\\t"',
        ]
      : []),
    ...Array.from({ length: inline }, () => ld),
    '"movq %[d], %[q]\\n\\t"',
    `"addw $${frac}, (%[acc])\\n\\t"`,
    '"cmovcq %[p], %[q]\\n\\t"',
    '"movq (%[q]), %[q]\\n\\t"',
    '"cmovcq %[q], %[p]\\n\\t"',
    '"movq %[p], (%[cur])\\n\\t"',
  ];
  return `static PART LINE_START void ${name}(uint64_t *cur, uint64_t *acc, uint64_t *dummy)
{
    uint64_t p, q, c;
    __asm__ volatile(
        ${lines.join('\n        ')}
        : [p] "=&r"(p), [q] "=&r"(q), [c] "=&r"(c)
        : [cur] "r"(cur), [acc] "r"(acc), [d] "r"(dummy)
        : "cc", "memory");
    (void)q;
    (void)c;
}
`;
}

/** A walk of `chains` cursors (emitRingWalk): rounds of a load from each, in a loop of as many
 *  rounds as make 16 loads or fewer, the rest in line. */
function emitChainsWalk(name: string, loadsPerReq: number, chains: number): string {
  if (chains > MAX_WALK_CHAINS) throw new Error(`a ring walk of ${chains} cursors`);
  const steps = loadsPerReq / chains;
  const whole = Math.floor(steps + 1e-9);
  const frac = Math.min(0xffff, Math.round((steps - whole) * 0x10000));
  const per = Math.max(1, Math.floor(16 / chains));
  const loop = whole >= per ? Math.floor(whole / per) : 0;
  const inline = whole - per * loop;
  const ks = Array.from({ length: chains }, (_, k) => k);
  const round = ks.map((k) => `"movq (%[p${k}]), %[p${k}]\\n\\t"`);
  const lines = [
    ...ks.map((k) => `"movq ${8 * k}(%[cur]), %[p${k}]\\n\\t"`),
    ...(loop
      ? [
          `"movq $${loop}, %[c]\\n"`,
          '"1:\\n\\t"',
          ...Array.from({ length: per }, () => round).flat(),
          '"subq $1, %[c]\\n\\t"',
          '"jnz 1b\\n\\t"',
        ]
      : []),
    ...Array.from({ length: inline }, () => round).flat(),
    `"addw $${frac}, (%[acc])\\n\\t"`,
    ...ks.flatMap((k) => [
      '"movq %[d], %[q]\\n\\t"',
      `"cmovcq %[p${k}], %[q]\\n\\t"`,
      '"movq (%[q]), %[q]\\n\\t"',
      `"cmovcq %[q], %[p${k}]\\n\\t"`,
    ]),
    ...ks.map((k) => `"movq %[p${k}], ${8 * k}(%[cur])\\n\\t"`),
  ];
  return `static PART LINE_START void ${name}(uint64_t *cur, uint64_t *acc, uint64_t *dummy)
{
    uint64_t ${ks.map((k) => `p${k}, `).join('')}q, c;
    __asm__ volatile(
        ${lines.join('\n        ')}
        : ${ks.map((k) => `[p${k}] "=&r"(p${k}), `).join('')}[q] "=&r"(q), [c] "=&r"(c)
        : [cur] "r"(cur), [acc] "r"(acc), [d] "r"(dummy)
        : "cc", "memory");
    (void)${ks.map((k) => `p${k}, (void)`).join('')}q;
    (void)c;
}
`;
}

/** The random branches, `n` PRNG steps a call (see branchesPerStep): taken (skipping an
 *  increment) with probability p on bits no predictor can foresee, so it misses about
 *  min(p, 1 - p) of them. */
export function emitBranches(p: number): string {
  const step = ['"1:\\n\\t"', '"imulq %[mul], %[x]\\n\\t"', '"addq $12345, %[x]\\n\\t"'];
  const tests =
    branchesPerStep(p) === 8
      ? Array.from({ length: 8 }, (_, k) => [
          `"btq $${56 - 3 * k}, %[x]\\n\\t"`,
          '"jc 2f\\n\\t"',
          '"addq $1, %[acc]\\n"',
          '"2:\\n\\t"',
        ]).flat()
      : [
          '"movq %[x], %[t]\\n\\t"',
          '"shrq $32, %[t]\\n\\t"',
          '"cmpq %[thr], %[t]\\n\\t"',
          '"jb 2f\\n\\t"',
          '"addq $1, %[acc]\\n"',
          '"2:\\n\\t"',
        ];
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
