import { CODE_SETS, type Profile } from '../model/index.js';
import { bodyPlan, type BodyPlan } from './body.js';
import { MIX_ITER } from './mix.js';

/** A part of the body that runs as its own function, named so that a per-function profile of
 *  the clone (callgrind's) tells what each part costs: `twin_data_<bin>` walks the data ring
 *  of a reuse bin, `twin_code_<bin>` runs the code segment of a footprint bin, `..._conflict`
 *  the conflict ring and segment. */
export const partName = (side: 'data' | 'code', bin: number | 'conflict' | 'conn') => `twin_${side}_${bin}`;

export const BRANCH_PART = 'twin_branch';

export const MIX_PART = 'twin_mix';

/** Where code crowd group j's blocks lie in their stride: not at its start, where page-aligned
 *  memory and code (stacks, buffers, aligned allocations, section starts) crowd set 0 of every
 *  cache whose set period is a page or less and would evict them in 8-way caches too; at line
 *  19, three lines further for each group before it, so that no two share a set of any cache
 *  of 8 sets or more; and apart from the data groups' lines (crowdOffset), so that code and
 *  data share no set of a unified last level either. */
export const codeCrowdOffset = (stride: number, j: number) => ((19 + 3 * j) % Math.max(1, stride / 64)) * 64;

/** Where data crowd group j's lines lie in their stride: likewise a way in, at line 37, three
 *  lines further for each group before it (the code groups' lines are 19 to 34). */
export const crowdOffset = (stride: number, j: number) => ((37 + 3 * j) % Math.max(1, stride / 64)) * 64;

export interface ChainSegment {
  name: string;
  /** The footprint bin of a segment (none: a code crowd group). */
  bin?: number;
  lines: number;
  loadsPerReq: number;
  /** A code crowd group: its few blocks one stride apart, `offset` bytes into it, a cycle
   *  walked k blocks a request from a shared position, so that every request cycles through
   *  the same few lines of a few cache sets. */
  stride?: number;
  offset?: number;
  /** Where each of a segment's blocks lies in the 16 KiB set period, in lines, in walk order
   *  (see segmentLayout): each after the last, the lines between them left out. */
  slots?: number[];
  /** The rounds of the chain a footprint segment is walked in, its blocks a request spread
   *  over them (see chainRounds); none: once a request, after the rounds (a crowd group). */
  rounds?: number[];
}

/** The largest set period of the sweep's L1s (128 KiB, 8 ways). */
export const SET_PERIOD = 16384;

/** The lines of the 16 KiB set period (SET_PERIOD): the sets of a 64 KiB 4-way L1. */
export const PERIOD_LINES = SET_PERIOD / 64;

/** The mean gap, in lines, between a warm segment's blocks: each block lies a random number of
 *  lines (geometric, this mean) after the last, as a program's hot code lies in its text among
 *  colder lines (see docs/body.md, code layout). */
export const CODE_GAP = 1;

/** A line run once in this many requests or more often holds its way between two runs of the
 *  other lines of its set: it counts as a whole line in that set; a colder one, in proportion. */
const WARM_RUNS = 4;

/** A segment whose lines count for less than this (WARM_RUNS) is laid end to end: its lines
 *  hold no way between two runs, and each left-out line spreads the code over more pages: the
 *  same simulated misses, but more CPU time a request in real runs (see docs/body.md, code
 *  layout). */
const COLD = 0.5;

/** A draw in [0, 1) for block j of the segment keyed `key`: the same whatever the segment's
 *  length or the other segments, so that growing a segment moves none of its blocks. */
function draw(key: number, j: number): number {
  let h = (Math.imul(key + 1, 0x9e3779b1) ^ Math.imul(j + 7, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39) >>> 0;
  return ((h ^ (h >>> 15)) >>> 0) / 2 ** 32;
}

/** A geometric gap of mean CODE_GAP from a draw u. */
const gapOf = (u: number) => Math.floor(Math.log(1 - u) / Math.log(CODE_GAP / (1 + CODE_GAP)));

/** Where each block of each segment lies in the 16 KiB set period, in lines, in walk order.
 *  Hottest segment first (its blocks a request over its lines, at most 1), its first block in
 *  the line whose set of 64 the skeleton's measured hot code (`outside`, CODE_SETS sets) and
 *  the blocks placed before fill least (each as warm as its segment: WARM_RUNS), each block
 *  after it a random gap (CODE_GAP) after the last, block j of segment `keys[k]` drawing alike
 *  whatever the lengths; a cold segment (COLD) end to end. Each is laid out at its `segs`
 *  lines, then cut to, or grown after them to, its `lines`. */
export function segmentLayout(
  segs: { lines: number; loadsPerReq: number }[],
  outside?: number[],
  lines: number[] = segs.map((q) => q.lines),
  keys: number[] = segs.map((_, k) => k),
): number[][] {
  const sets = outside?.length === CODE_SETS ? [...outside] : new Array<number>(CODE_SETS).fill(0);
  const heat = (q: { lines: number; loadsPerReq: number }) =>
    Math.min(1, q.loadsPerReq / Math.max(1, q.lines));
  const out: number[][] = segs.map(() => []);
  const order = segs.map((_, k) => k).sort((a, b) => heat(segs[b]) - heat(segs[a]) || a - b);
  /** `n` more blocks of segment k, each after its last. */
  const place = (k: number, n: number) => {
    const w = Math.min(1, heat(segs[k]) * WARM_RUNS);
    for (let i = 0; i < n; i++) {
      const j = out[k].length;
      let l = 0;
      if (j === 0) for (let x = 1; x < CODE_SETS; x++) l = sets[x] < sets[l] - 1e-9 ? x : l;
      else l = (out[k][j - 1] + 1 + (w < COLD ? 0 : gapOf(draw(keys[k], j)))) % PERIOD_LINES;
      out[k].push(l);
      sets[l % CODE_SETS] += w;
    }
  };
  // Each segment as laid out at `segs`' lines; then, where it has more lines, the rest after them.
  for (const k of order) place(k, Math.round(segs[k].lines));
  for (const k of order) place(k, Math.max(0, Math.round(lines[k]) - out[k].length));
  return out.map((slots, k) => slots.slice(0, Math.max(0, Math.round(lines[k]))));
}

/** The chain's segments: the footprint bins' and the code crowd groups, each footprint
 *  segment's blocks at their lines of the 16 KiB period (segmentLayout). The
 *  segments are laid out as in `nominal` (the plan before tuning, where it has the segment),
 *  each then cut to its lines or grown after them, so that the tuner's moves of one segment's
 *  lines or of any blocks a request move no other block. */
export function chainSegments(
  plan: BodyPlan,
  skeletonSets?: number[],
  nominal: BodyPlan = plan,
): ChainSegment[] {
  const bins = plan.segments
    .map((r, bin) => ({ bin, lines: Math.round(r.lines), loadsPerReq: r.loadsPerReq }))
    .filter((s) => s.lines > 0);
  const slots = segmentLayout(
    bins.map((s) => (Math.round(nominal.segments[s.bin]?.lines ?? 0) > 0 ? nominal.segments[s.bin] : s)),
    skeletonSets,
    bins.map((s) => s.lines),
    bins.map((s) => s.bin),
  );
  return [
    ...bins.map((s, k) => ({
      name: partName('code', s.bin),
      bin: s.bin,
      lines: s.lines,
      loadsPerReq: s.loadsPerReq,
      slots: slots[k],
      rounds: plan.segmentRounds[s.bin] ?? [0],
    })),
    ...plan.codeCrowd.map((g, j) => ({
      name: `${partName('code', 'conflict')}_${j}`,
      ...g,
      offset: codeCrowdOffset(g.stride, j),
    })),
  ];
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
 *  (a segment walked in passes is called once a pass) with its rate as an immediate (each
 *  within the 96 and 128 bytes allowed here; sixteen rings and eight segments took 2,513
 *  bytes), with room to spare; with request types' multiples (`perOp`), each call's rate from
 *  a table and each ring walk in a loop of calls. */
export const bodySlot = (rings: number, segs: number, perOp = false) =>
  64 * Math.ceil((1024 + (perOp ? 160 : 96) * rings + (perOp ? 176 : 128) * segs) / 64);

/** The chain of a profile's plan: its segments laid out as in the plan before tuning (the
 *  profile's knobs of the code side reset), among the skeleton's hot code sets. */
export function chainOf(p: Profile, plan: BodyPlan): ChainSegment[] {
  const nominal = bodyPlan({
    ...p,
    knobs: { ...p.knobs, codeBlocks: null, codeLines: null, codeCrowd: null },
  });
  return chainSegments(plan, p.body.skeleton?.codeSets, nominal);
}
