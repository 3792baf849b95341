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

/** How many ways of the two L1s the segments may fill in a set, with what is already there:
 *  the 32 KiB 8-way L1's (a set of the 4 KiB period) and the 64 KiB 4-way one's (a set of the
 *  16 KiB period), each less half a way, the skeleton's measure being a sum of lines' runs. */
const ROOM = { coarse: 8 - 0.5, fine: 4 - 0.5 };

/** A line run once in this many requests or more often holds its way between two runs of the
 *  other lines of its set: it counts as a whole line in that set; a colder one, in proportion. */
const WARM_RUNS = 4;

/** A segment whose lines count for less than this (WARM_RUNS) is laid end to end: its lines
 *  hold no way between two runs, and each left-out line spreads the code over more pages: the
 *  same simulated misses, but more CPU time a request in real runs (see docs/body.md, code
 *  layout). */
const COLD = 0.5;

/** Where each block of each segment lies in the 16 KiB set period, in lines, in walk order.
 *  Hottest segment first (its blocks a request over its lines, at most 1), each block goes in
 *  the first line from the last block's on (from the least filled line, for the first) whose
 *  sets in the two L1s have a way left (ROOM), counting the skeleton's measured hot code
 *  (`outside`, CODE_SETS sets, spread evenly over the 256 sets of the 16 KiB period), the
 *  code crowd groups' lines (`occupied`) and the blocks already placed (each as warm as
 *  its segment: WARM_RUNS); where no line within 64 has, or the segment is cold (COLD), in
 *  the next line. Each is laid out at its `segs` lines, then cut to, or grown after them to,
 *  its `lines`. Laid end to
 *  end from a start, segments overflow the sets the skeleton already fills, and each move of
 *  a segment's lines moves which sets overflow (see docs/body.md, code layout). */
export function segmentLayout(
  segs: { lines: number; loadsPerReq: number }[],
  outside?: number[],
  occupied: { set: number; lines: number }[] = [],
  lines: number[] = segs.map((q) => q.lines),
): number[][] {
  const fine = new Array<number>(PERIOD_LINES).fill(0);
  for (const o of occupied) fine[o.set % PERIOD_LINES] += o.lines;
  const skeleton = outside?.length === CODE_SETS ? outside : new Array<number>(CODE_SETS).fill(0);
  const coarse = [...skeleton];
  fine.forEach((x, i) => (coarse[i % CODE_SETS] += x));
  const perFine = PERIOD_LINES / CODE_SETS;
  const fineLoad = (l: number) => fine[l] + skeleton[l % CODE_SETS] / perFine;
  const heat = (q: { lines: number; loadsPerReq: number }) =>
    Math.min(1, q.loadsPerReq / Math.max(1, q.lines));
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
  // The crowd groups' blocks lie at their lines, each as warm as its group runs (as planned
  // before tuning, so that the tuner's moves of the groups move no segment's block).
  const placed = (groups: BodyPlan['codeCrowd']) =>
    groups.map((g, j) => ({ ...g, offset: codeCrowdOffset(g.stride, j) }));
  const crowd = placed(plan.codeCrowd);
  const occupied = placed(nominal.codeCrowd).flatMap((g) =>
    Array.from({ length: g.lines }, (_, i) => ({
      set: (g.offset + i * g.stride) / 64,
      lines: Math.min(1, g.loadsPerReq / g.lines),
    })),
  );
  const slots = segmentLayout(
    bins.map((s) => (Math.round(nominal.segments[s.bin]?.lines ?? 0) > 0 ? nominal.segments[s.bin] : s)),
    skeletonSets,
    occupied,
    bins.map((s) => s.lines),
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
    ...crowd.map((g, j) => ({ name: `${partName('code', 'conflict')}_${j}`, ...g })),
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
