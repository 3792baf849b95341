import { type CurvePoint, type PortableCpu, type Profile } from '../model/index.js';
import {
  addCounts,
  blockCounts,
  blockUnits,
  mixCounts,
  mixTargets,
  solveMix,
  type ClassCounts,
  type MixLoop,
} from './mix.js';
export { addCounts } from './mix.js';
import { opScales, type OpScale } from './ops.js';
import { connPart, withoutConn, type ConnPart } from './conn.js';
import { ringRuns } from './runs.js';
import { ringChains } from './chains.js';
import {
  cellMisses,
  crowdBackground,
  crowdCells,
  crowdSizes,
  fitCrowd,
  randomMisses,
  type Cell,
  type CrowdGroup,
} from './crowd.js';
import {
  binTarget,
  conflictExcess,
  monotone,
  synthesizeRings,
  outside as outsideLines,
  LINE,
  type Interference,
  type Ring,
  type ReuseBin,
} from './rings.js';
import { sideBins } from './sides.js';
import { dataRounds } from './rounds.js';
import { chainRounds, codePasses, wholeBlocks } from './passes.js';

/* Instructions per unit of each part of the generated body (see generate/body.ts). */

/** One code block of the chain: up to ten operations (fewer where the original runs fewer
 *  instructions per line of code it misses), of five bytes at most, and a test and branch to
 *  the next block, in at most 62 of the block's 64 bytes. */
export const BLOCK_ALU = 10;
/** Taken rate of the random branches: 0.5 mispredicts most per instruction spent. */
export const HARD_P = 0.5;
/** Random branches per step of the PRNG: at p = 1/2, eight, one per bit of the LCG's high
 *  half tested; else one, its high half compared with p * 2^32. */
export const branchesPerStep = (p: number) => (p === 0.5 ? 8 : 1);
/** Mispredictions per random branch taken with probability p. No predictor can foresee the
 *  bits, so the best guesses the likelier side and misses min(p, 1 - p); a 2-bit saturating
 *  counter (Valgrind's, indexed by address and history) sits in state k of 0..3 with weight
 *  (p/(1-p))^k and misses a little more away from p = 1/2 (0.235 at p = 0.2). */
export function hardMissRate(p: number): number {
  if (p <= 0 || p >= 1) return 0;
  const r = p / (1 - p);
  const w = [1, r, r * r, r * r * r];
  const sum = w.reduce((a, b) => a + b, 0);
  return ((w[0] + w[1]) / sum) * p + ((w[2] + w[3]) / sum) * (1 - p);
}
export const STATE_BYTES = 512;
export const FILLER_BYTES = 4096;
/** Lines of code the body runs per request besides its code chain (its loops, about 1.5 KiB). */
const BODY_CODE_LINES = 24;

/** What the body must supply: the original's work less what the clone's skeleton does itself. */
export interface BodyTarget {
  insnsPerReq: number;
  dataBins: ReuseBin[];
  codeBins: ReuseBin[];
  /** The most passes a request a code segment is walked in (see passes.ts). */
  codePasses: number;
  /** The rounds a request the data rings are walked in, each ring in every round (dataRounds). */
  dataPasses: { every: number };
  branchMissesPerReq: number;
  /** Data misses per request a low-associativity L1 adds over its 8-way curve point, beyond
   *  the skeleton's. */
  conflictPerReq: number;
  codeConflictPerReq: number;
  /** Interference from outside the body: lines per request and the footprint they come from. */
  hotData: Interference;
  hotCode: Interference;
  /** The accesses to per-connection state (taken out of dataBins). */
  conn: ConnPart;
}

/** Lines of the conflict ring: more than a 4-way set holds, fewer than an 8-way set. */
export const CONFLICT_LINES = 5;

export function bodyTarget(p: Profile): BodyTarget {
  const o: PortableCpu = p.body.original;
  const s = p.body.skeleton;
  // The skeleton's lines in a window of requests: from its miss curve, by footprint theory
  // (a request through a server's code touches most of it, reused at short distances too);
  // and the body's own hot lines. (Without a curve: its misses in the smallest cache per
  // request, from the smallest cache that holds them.)
  const outside = (c: CurvePoint[] | undefined, accesses: number | undefined, own: number): Interference => {
    const m = monotone(c ?? []);
    const perReq = m[0]?.missesPerReq ?? 0;
    const fits = m.find((q) => q.missesPerReq <= 0.02 * perReq) ?? m[m.length - 1];
    return {
      hotLines: perReq + own,
      hotFootprint: (fits ? fits.bytes / LINE : 0) + own,
      ...(m.length ? { curve: m, accesses, own } : {}),
    };
  };
  const { dataBins, codeBins } = sideBins(o, s);
  const conn = connPart(p, dataBins);
  const branchMissesPerReq = Math.max(0, o.branchMissesPerReq - (s?.branchMissesPerReq ?? 0));
  const insnsPerReq = Math.max(0, o.insnsPerReq - (s?.insnsPerReq ?? 0));
  const hotData = outside(s?.dataCurve, s?.dataRefsPerReq, FILLER_BYTES / LINE);
  const ringBins = withoutConn(dataBins, conn);
  return {
    insnsPerReq,
    dataBins: ringBins,
    conn,
    codeBins,
    codePasses: codePasses(branchMissesPerReq, codeBins),
    dataPasses: { every: dataRounds(ringBins, hotData, insnsPerReq) },
    branchMissesPerReq,
    conflictPerReq: Math.max(0, conflictExcess(o) - (s ? conflictExcess(s) : 0)),
    codeConflictPerReq: Math.max(0, conflictExcess(o, 'code') - (s ? conflictExcess(s, 'code') : 0)),
    hotData,
    hotCode: outside(s?.codeCurve, s?.insnsPerReq, BODY_CODE_LINES),
  };
}

/** Instructions per request of the fixed parts besides the code blocks, by class: a ring load
 *  is a load; the random branches as below. */
export function fixedCounts(rings: Ring[], hard: number, p: number, crowdLoads = 0): ClassCounts {
  const loads = rings.reduce((s, r) => s + (r.lines ? r.loadsPerReq : 0), 0) + crowdLoads;
  // The crowd groups' loads are a counted loop: a step and an exit test each.
  const c = crowdLoads;
  // At p = 1/2: per eight branches a multiply and an add, eight bit tests, four increments,
  // the loop's step and exit test; else per branch the PRNG step, a shift, a compare, the
  // increment taken 1 - p of the time, the loop's step and exit test.
  if (branchesPerStep(p) === 8)
    return { load: loads, alu: (hard / 8) * (1 + 8 + 4 + 1) + c, cond: (hard / 8) * 9 + c, mul: hard / 8 };
  return { load: loads, alu: (6 - p) * hard + c, cond: 2 * hard + c, mul: hard };
}

export interface BodyPlan {
  insnsPerReq: number;
  /** Data rings, shared by the serving threads of a process, one per reuse bin (0 lines: unused). */
  rings: Ring[];
  /** Lines each ring walks in order before a jump (see runs.ts; 1: a random cycle). */
  ringRuns: number[];
  /** Rounds a request the rings are walked in, each a pass of every ring (dataRounds). */
  ringRounds: number;
  /** Cursors the rings are walked by, each ring no more than its lines and its loads a call
   *  allow (see chains.ts). */
  ringChains: number;
  /** Code segments of the chain, one per footprint bin: `lines` blocks of 64 bytes, `loadsPerReq` run per request. */
  segments: Ring[];
  /** The rounds of the chain each segment is walked in, a pass in each (see chainRounds). */
  segmentRounds: number[][];
  /** The crowd groups (see crowd.ts), each walked `loadsPerReq` times per request. */
  crowd: CrowdGroup[];
  /** Lines of each connection's own, and loads a request over them (see conn.ts). */
  conn: { lines: number; loadsPerReq: number };
  /** The same for code: groups of code blocks one stride apart, each `loadsPerReq` blocks run
   *  a request (see crowd.ts). */
  codeCrowd: CrowdGroup[];
  /** Operations in each code block besides the test and branch to the next, by class
   *  (fractions: the chain spreads each class over its blocks). */
  blockUnits: ClassCounts;
  hardBranchesPerReq: number;
  /** Probability that a random branch skips (is taken). */
  hardP: number;
  /** The mix loop: the instruction budget left after the other parts, composed so that the
   *  clone's instruction mix is the original's. */
  mix: MixLoop;
  /** Per serving thread: state and filler. */
  memBytes: number;
  /** Each request type's multiples of the parts, in the profile's order of types (empty: every
   *  type runs the same body), with its passes through the rings and its mix loop's multiple,
   *  solved so that its instructions are the type's. */
  ops: (OpScale & { passes: number; mix: number })[];
}

/** The instructions per request by class a plan counts on: the skeleton's, the code blocks',
 *  the other fixed parts' and the mix loop's, without the measured overhead (what a measured
 *  clone runs beyond these is the next overhead). */
export function plannedCounts(p: Profile, q: BodyPlan): ClassCounts {
  const sk = p.body.skeleton;
  const skeleton: ClassCounts = sk?.mix
    ? Object.fromEntries(Object.entries(sk.mix.shares).map(([c, v]) => [c, v * sk.insnsPerReq]))
    : {};
  const blocks = chainBlocks(q.segments, q.codeCrowd);
  const fixed = addCounts(
    fixedCounts([...q.rings, q.conn], q.hardBranchesPerReq, q.hardP, crowdLoads(q.crowd)),
    { alu: -1 },
    wholeBlocks(q.segments, q.segmentRounds),
  );
  return addCounts(
    addCounts(addCounts(skeleton, blockCounts(q.blockUnits), blocks), fixed),
    mixCounts(q.mix),
  );
}

/** Code blocks the chain runs per request: its segments' and its crowd groups'. */
const chainBlocks = (segments: Ring[], codeCrowd: CrowdGroup[]) =>
  segments.reduce((s, r) => s + (r.lines ? r.loadsPerReq : 0), 0) + crowdLoads(codeCrowd);

const floor = (x: number, min: number) => (x >= min ? x : 0);

/** Loads per request of the crowd groups together. */
export const crowdLoads = (groups: CrowdGroup[]) => groups.reduce((s, g) => s + g.loadsPerReq, 0);

/** Misses per request that matter at a table's cell: the larger of the original's there and
 *  ERROR_FLOOR_MPKI misses per 1,000 of its instructions (a fit weighs each cell by one over
 *  this, so that it follows relative errors and not the largest counts alone). */
const ERROR_FLOOR_MPKI = 2;

/** The crowd groups of a side a profile's plan starts from: fitted to what the original misses
 *  at the L1s of few ways (crowdCells) less what the skeleton misses there, as measured, and
 *  what the side's rings or code segments will, as random cycles at their bins' distances.
 *  Without reuse tables: one group for the profile's low-associativity point, five lines one
 *  set period of that L1 apart. */
export function crowdFor(p: Profile, side: 'data' | 'code', rings: Ring[], t: BodyTarget): CrowdGroup[] {
  const o = p.body.original;
  const s = p.body.skeleton;
  const stream = side === 'data' ? 'D' : 'I';
  if (!o.reuse || (s && !s.reuse))
    return [
      {
        lines: CONFLICT_LINES,
        stride: o.conflict.bytes / o.conflict.assoc,
        loadsPerReq: side === 'data' ? t.conflictPerReq : t.codeConflictPerReq,
      },
    ];
  const cells = crowdCells(o.reuse[stream], crowdSizes(stream));
  const bins = side === 'data' ? t.dataBins : t.codeBins;
  const ringMisses = (c: Cell) =>
    rings.reduce(
      (a, r, i) => a + (r.lines ? randomMisses(binTarget(bins[i]), r.loadsPerReq, c.sets, c.ways) : 0),
      0,
    );
  const want = cells.map(
    (c) => cellMisses(o.reuse![stream], c) - (s ? cellMisses(s.reuse![stream], c) : 0) - ringMisses(c),
  );
  return fitCrowd(cells, want, crowdWeights(o, cells, stream), undefined, crowdBackground(o, cells, stream));
}

/** Each cell's weight in a crowd fit (see ERROR_FLOOR_MPKI). */
export function crowdWeights(o: PortableCpu, cells: Cell[], stream: 'D' | 'I' = 'D'): number[] {
  const floor = (ERROR_FLOOR_MPKI * o.insnsPerReq) / 1000;
  return cells.map((c) => 1 / Math.max(floor, o.reuse ? cellMisses(o.reuse[stream], c) : 0));
}

/** Instructions a request of a type's parts besides its mix loop: every part at the type's
 *  multiple (the rings by its passes), and the measured overhead, which no type changes. */
export function typeFixedInsns(
  q: Pick<
    BodyPlan,
    'rings' | 'segments' | 'segmentRounds' | 'crowd' | 'codeCrowd' | 'hardBranchesPerReq' | 'conn'
  > & {
    perBlock: number;
  },
  s: Pick<OpScale, 'segments' | 'crowd' | 'hard'> & { passes: number },
  overhead: ClassCounts | null = null,
): number {
  const total = (c: ClassCounts) => Object.values(c).reduce((a, b) => a + (b ?? 0), 0);
  const rings = q.rings.map((r) => ({ ...r, loadsPerReq: r.loadsPerReq * s.passes }));
  const blocks =
    q.segments.reduce((a, r, i) => a + (r.lines ? r.loadsPerReq * (s.segments[i] ?? 1) : 0), 0) +
    crowdLoads(q.codeCrowd) * s.crowd;
  return (
    total(overhead ?? {}) +
    total(
      fixedCounts([...rings, q.conn], q.hardBranchesPerReq * s.hard, HARD_P, crowdLoads(q.crowd) * s.crowd),
    ) +
    q.perBlock * blocks -
    wholeBlocks(q.segments, q.segmentRounds, s.segments)
  );
}

/** Instructions of body work per request: the tuned knob, or the target's count, times the
 *  what-if scale. */
export function bodyInsnsPerReq(p: Profile, t: BodyTarget = bodyTarget(p)): number {
  return Math.max(0, (p.knobs.bodyInsnsPerReq ?? t.insnsPerReq) * p.knobs.insnScale);
}

/** The body's parts per request: ring and segment sizes solved from the loads per bin (the
 *  tuned knobs, or the target's histogram) with the interference correction. */
export function bodyPlan(p: Profile): BodyPlan {
  const t = bodyTarget(p);
  const k = p.knobs;
  // A knob per bin, where it has one per bin (a profile tuned with other bins has not).
  const per = (knob: number[] | null, n: number) => (knob?.length === n ? knob : []);
  const loads = (bins: ReuseBin[], knob: number[] | null) =>
    bins.map((b, i) => ({ ...b, perReq: floor(per(knob, bins.length)[i] ?? b.perReq, 0.01) }));
  // Rings and chain are the process's, their cursors shared by its threads: one walker each.
  // Sizes the tuner has set stand; the others are solved.
  const sized = (rs: Ring[], knob: number[] | null) => {
    const set = per(knob, rs.length);
    return rs.map((r, i) => (r.lines && set[i] ? { ...r, lines: Math.max(2, Math.round(set[i])) } : r));
  };
  const rings = sized(synthesizeRings(loads(t.dataBins, k.dataLoads), t.hotData, t.dataPasses), k.dataLines);
  const segments = sized(
    synthesizeRings(loads(t.codeBins, k.codeBlocks), t.hotCode, t.codePasses),
    k.codeLines,
  );
  const hardBranchesPerReq = floor(k.hardBranchesPerReq ?? t.branchMissesPerReq / hardMissRate(HARD_P), 0.01);
  const insnsPerReq = bodyInsnsPerReq(p, t);
  const groups = (g: CrowdGroup[]) =>
    g.map((x) => ({ ...x, loadsPerReq: floor(x.loadsPerReq, 0.01) })).filter((x) => x.loadsPerReq > 0);
  const crowd = groups(k.crowd ?? crowdFor(p, 'data', rings, t));
  const codeCrowd = groups(k.codeCrowd ?? crowdFor(p, 'code', segments, t));
  const conn = { lines: t.conn.lines, loadsPerReq: t.conn.loadsPerReq };
  const o = p.body.original;
  const sk = p.body.skeleton;
  // What the plan does not count, as measured, counts as a fixed part.
  const segmentRounds = chainRounds(segments, t.codePasses, outsideLines(t.hotCode, 1));
  const fixedParts = addCounts(
    addCounts(
      fixedCounts([...rings, conn], hardBranchesPerReq, HARD_P, crowdLoads(crowd)),
      k.mixOverhead ?? {},
    ),
    { alu: -1 },
    wholeBlocks(segments, segmentRounds),
  );
  const total = (c: ClassCounts) => Object.values(c).reduce((a, b) => a + (b ?? 0), 0);
  // The blocks may take at most 90% of what the fixed parts leave of the budget: the rest is
  // for branches and mix. (Sized from the target's budget, not the tuned one: the tuner moves
  // the budget to correct the instruction count, and block sizes that followed it would jump
  // by whole operations.)
  const blocks = chainBlocks(segments, codeCrowd);
  const room = Math.max(0, t.insnsPerReq * k.insnScale - total(fixedParts));
  // A block runs its operations (a fifth more for tests and returns) and about three more.
  const blockOps =
    blocks > 0 ? Math.max(1, Math.min(BLOCK_ALU, Math.floor(((0.9 * room) / blocks - 3) / 1.2))) : BLOCK_ALU;
  // The blocks' operations take the classes still wanted after the other fixed parts; the mix
  // loop supplies the rest.
  const blockUnitsOf = blockUnits(
    mixTargets(o.mix, o.insnsPerReq, sk?.mix ?? null, sk?.insnsPerReq ?? 0, fixedParts),
    blockOps,
    blocks,
  );
  const fixed = addCounts(fixedParts, blockCounts(blockUnitsOf), blocks);
  const used = total(fixed);
  const mix = solveMix(
    o.mix,
    o.insnsPerReq,
    sk?.mix ?? null,
    sk?.insnsPerReq ?? 0,
    fixed,
    insnsPerReq - used,
  );
  // A type's mix loop takes what its other parts leave of its instructions.
  const perBlock = total(blockCounts(blockUnitsOf));
  const mixInsns = total(mixCounts(mix));
  // The rings are walked in passes, all of them a pass, a type's passes the mean of its
  // multiples over the rings (weighed by their loads): a loop of calls per ring would
  // mispredict its exit on most requests (a pass count that varies by type), ten rings ten
  // times as often as one loop.
  const ringLoads = rings.reduce((a, r) => a + (r.lines ? r.loadsPerReq : 0), 0);
  const ops = opScales(p, t.dataBins).map((s) => {
    const passes =
      ringLoads > 0
        ? rings.reduce((a, r, i) => a + (r.lines ? r.loadsPerReq * (s.rings[i] ?? 1) : 0), 0) / ringLoads
        : 1;
    const fixedOf = typeFixedInsns(
      { rings, segments, segmentRounds, crowd, codeCrowd, hardBranchesPerReq, perBlock, conn },
      { ...s, passes },
      k.mixOverhead,
    );
    return { ...s, passes, mix: mixInsns > 0 ? Math.max(0, insnsPerReq * s.insns - fixedOf) / mixInsns : 1 };
  });
  const shares = p.requests.map((r) => r.share);
  const mean = ops.reduce((a, s, i) => a + shares[i] * s.mix, 0) / shares.reduce((a, b) => a + b, 0);
  if (mean > 0) for (const s of ops) s.mix /= mean;
  return {
    insnsPerReq,
    rings,
    ringRuns: ringRuns(o.reuse, t.dataBins),
    ringRounds: t.dataPasses.every,
    ringChains: ringChains(p, rings, Math.max(1, t.dataPasses.every), conn.loadsPerReq + crowdLoads(crowd)),
    segments,
    segmentRounds,
    crowd,
    codeCrowd,
    conn,
    blockUnits: blockUnitsOf,
    hardBranchesPerReq,
    hardP: HARD_P,
    mix,
    memBytes: STATE_BYTES + FILLER_BYTES,
    ops,
  };
}
