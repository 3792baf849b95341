import type { Profile, Workload } from '../model/index.js';
import { cloneLaunchSpec } from '../collect/target.js';
import { ZERO_TOTALS } from '../collect/cachegrind.js';
import { KEY_POINTS, SWEEP } from '../collect/sweep.js';
import { measurePoints } from '../collect/cpu.js';
import { buildClone } from '../generate/build.js';
import { generateClone } from '../generate/index.js';
import { bodyPlan, crowdLoads } from '../synth/body.js';
import { MIX_PART, partName } from '../synth/layout.js';
import { BIG_BUDGET, blockInsns, mixCost, mixInsns, nextBudget } from './budget.js';
import { kib, offTarget, pointFigures, scored, tunePoints } from './figures.js';
import { branchRate, type Measured } from './measured.js';
import {
  partTrim,
  refusedForCounts,
  TRIM_AIM,
  TRIMS,
  trimKeeps,
  trimStep,
  type TrimPart,
  CODE_TRIM_GAIN,
  LEVEL_TRIM_GAIN,
} from './trim-rules.js';

/** The sweep points a trim measures, a cachegrind pair each: the 32 KiB 8-way L1s with the
 *  256 KiB level behind them, the 4-way 64 KiB L1s with 1 MiB behind them (those the profile
 *  measures twice). They give every scored L1 figure and the two smaller last levels'. */
const TRIM_POINTS = KEY_POINTS;

/** One side's parts (data rings or code segments, and the side's conflict part) as a trim
 *  sees them: their loads a request now and their measured misses per load at every tuned
 *  figure. A code segment run a round or more a request is not moved: all its lines run
 *  every request whatever its blocks, and its misses follow its rounds, not its blocks. One
 *  run less than a round keeps its lines whatever its blocks a request, and misses about as
 *  often a block. */
function trimSide(at: Measured, side: 'data' | 'code') {
  const plan = side === 'data' ? at.plan.rings : at.plan.segments;
  const conflict = { loadsPerReq: crowdLoads(side === 'data' ? at.plan.crowd : at.plan.codeCrowd) };
  const perLoad = (fn: string, loads: number): Record<string, number> => {
    const q = at.part(fn);
    return q && loads > 0
      ? Object.fromEntries(Object.entries(tunePoints(q)).map(([k, v]) => [k, v / loads]))
      : {};
  };
  const parts: TrimPart[] = plan.map((r, k) => ({
    loads: r.lines ? r.loadsPerReq : 0,
    perLoad: perLoad(partName(side, k), r.loadsPerReq),
    still: side === 'code' && r.loadsPerReq >= r.lines,
  }));
  return {
    parts,
    conflict: {
      loads: conflict.loadsPerReq,
      perLoad: perLoad(partName(side, 'conflict'), conflict.loadsPerReq),
    } as TrimPart,
  };
}

/** The kept iteration's knobs trimmed: the random branches until the branch misses, with
 *  what the parts' moves carry, are within TRIM_AIM of their tolerance; on each side, a data ring or code segment where
 *  the 32 KiB L1's misses are not, or, for the rings, a last level's the trim sees
 *  (`partTrim`, the move that leaves the figures closest); and with each, the mix loop's budget, for the
 *  instructions missing and what the parts add or take (`nextBudget`). The budget and the random
 *  branches move the curves little: the mix loop runs on registers and a few hot lines, the
 *  random branches in a loop of their own. But a step of all the knobs may have moved both
 *  (a part's cost per unit changes where its plan does; the chain's blocks share the
 *  simulated predictor's table with the random branches). Each trim is checked with the two
 *  pairs of TRIM_POINTS (a third of an iteration's runs) and kept only if its figures there
 *  are closer as a whole (`trimKeeps`), or repaired once where its instructions or branch
 *  misses alone refused it, or tried once without its parts' moves where those refused it;
 *  each trial goes into `base`'s history with its figures. */
export async function trimKept(
  at: Measured,
  want: Record<string, number>,
  tols: { tol: number; mpkiTol: number; abs: number },
  scale: number,
  base: Profile,
  w: Workload,
  dir: string,
  say: (msg: string) => void,
): Promise<Profile['knobs']> {
  const keys = Object.keys(
    pointFigures(
      TRIM_POINTS.map(() => ZERO_TOTALS),
      TRIM_POINTS,
      1,
    ),
  ).filter((k) => want[k] !== undefined);
  const pick = (r: Record<string, number>) =>
    Object.fromEntries(keys.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
  const wanted = pick(want);
  const score = (g: Record<string, number>) => offTarget(wanted, g, tols.tol, tols.mpkiTol, tols.abs).score;
  const tolOf = (k: string) => Math.max(tols.mpkiTol * want[k], (tols.abs * want.insns) / 1000);
  // The scored figures the trim's runs do not see (the largest last levels): as the kept
  // iteration measured them, moved by each kept trim's parts at their misses per load.
  const unseen = Object.keys(want).filter(
    (k) => k !== 'insns' && k !== 'branch' && at.got[k] !== undefined && scored(k) && !keys.includes(k),
  );
  let knobs = at.profile.knobs;
  let now = { budget: at.plan.insnsPerReq, hard: at.plan.hardBranchesPerReq };
  const sides = { data: trimSide(at, 'data'), code: trimSide(at, 'code') };
  const l1 = `@${kib(SWEEP[TRIM_POINTS[0]].l1)}`;
  // The last levels the trim's runs see, which the data rings answer for (the code segments'
  // lines fit them): a trim of the 32 KiB misses alone may leave a last level off, which a
  // platform with that level as its L2 then shows.
  const lastLevels = keys.filter((k) => k.startsWith('L@'));
  let got = { ...at.got };
  let best = score(pick(got));
  const perPlanned = mixCost(at.part(MIX_PART)?.insnsPerReq ?? 0, mixInsns(at.plan));
  const { rate } = branchRate(at);
  const branchTol = TRIM_AIM * tolOf('branch');
  /** A trial's knobs built and measured at the trim points, reported and kept in the history. */
  const trial = async (knobs: Profile['knobs'], more: boolean, label: string) => {
    generateClone({ ...base, knobs }, dir);
    const binary = buildClone(dir);
    const tp = pointFigures(
      await measurePoints(cloneLaunchSpec(binary, w), w, TRIM_POINTS),
      TRIM_POINTS,
      2 * w.valgrindRequests,
    );
    const s = score(tp);
    const keep = trimKeeps(pick(got), tp, wanted, tols, more);
    say(`${label}: x${best.toFixed(2)} -> x${s.toFixed(2)}${keep ? '' : ', not kept'}`);
    const worst = offTarget(wanted, tp, tols.tol, tols.mpkiTol, tols.abs).worst;
    const points = Object.fromEntries(keys.map((k) => [k, { clone: tp[k], original: want[k] }]));
    const error = (tp.insns - want.insns) / want.insns;
    const step = {
      bodyInsnsPerReq: knobs.bodyInsnsPerReq ?? 0,
      cloneInsnsPerReq: tp.insns,
      targetInsnsPerReq: want.insns,
      error,
      points,
    };
    base.tuning.push({
      iteration: base.tuning.length,
      ...step,
      trim: true,
      score: s,
      worst,
      kept: keep,
      knobs,
    });
    return { tp, s, keep };
  };
  /** The counts' step from figures `from` (trimStep at the trims' aims). */
  const countsStep = (from: Record<string, number>, at: { budget: number; hard: number }) =>
    trimStep(
      { insns: from.insns, branch: from.branch },
      { insns: want.insns, branch: want.branch },
      at,
      perPlanned,
      rate,
      TRIM_AIM * tols.tol,
      branchTol,
    );
  /** Knobs with a counts' step's random branches and budget. */
  const withCounts = (k: Profile['knobs'], c: { budget: number; hard: number }): Profile['knobs'] => ({
    ...k,
    hardBranchesPerReq: c.hard,
    bodyInsnsPerReq: c.budget / scale,
  });
  for (let t = 0; t < TRIMS; t++) {
    // Each side: one part for the 32 KiB L1 (the data side's for a last level the trim sees
    // as well). The crowd groups, data's and code's, are fitted to every low-associativity L1
    // at once: moved for the 4-way point alone, they would leave the others (a 128 KiB 2-way
    // L1 missed 22% more); they stay as the kept iteration has them.
    const moves = (['data', 'code'] as const).map((side) => {
      const s = sides[side];
      const letter = side === 'data' ? 'D' : 'I';
      const aims = [`${letter}${l1}`, ...(side === 'data' ? lastLevels : [])];
      const gain = (key: string) =>
        side === 'code' ? CODE_TRIM_GAIN : key.startsWith('L@') ? LEVEL_TRIM_GAIN : 1;
      const part = aims
        .map((key) => partTrim(key, got, want, s.parts, tolOf, unseen, keys, gain(key)))
        .reduce<ReturnType<typeof partTrim>>((a, b) => (b && (!a || b.cost < a.cost) ? b : a), null);
      return { side, part };
    });
    // The random branches answer for what the moves leave: each moved part's branch misses
    // at its measured rate a load, or a trim that cuts a part overshoots the branch misses.
    const movedBranch = moves.reduce((a, m) => a + (m.part?.moved.branch ?? 0), 0);
    const trimmed = countsStep({ insns: got.insns, branch: got.branch + movedBranch }, now);
    if (!trimmed && moves.every((m) => !m.part)) break;
    const next = { ...(trimmed ?? now) };
    const knobsT: Profile['knobs'] = { ...knobs, hardBranchesPerReq: next.hard };
    for (const m of moves) {
      if (m.part)
        knobsT[m.side === 'data' ? 'dataLoads' : 'codeBlocks'] = sides[m.side].parts.map((q, k) =>
          k === m.part!.k ? m.part!.loads : q.loads,
        );
    }
    // The budget: what is missing, less what the parts add or take at their measured cost a
    // load, the mix loop at its measured cost a planned instruction. Every code block's cost
    // follows the next plan's (its operations are the chain's share of the mix, spread over
    // all its blocks), moved or not: a budget for the moved parts alone misses the
    // instruction target when a segment's blocks move.
    const plan = bodyPlan({ ...base, knobs });
    const trialPlan = bodyPlan({ ...base, knobs: { ...knobsT, bodyInsnsPerReq: BIG_BUDGET / scale } });
    const rescale = blockInsns(plan) > 0 ? blockInsns(trialPlan) / blockInsns(plan) : 1;
    const allParts = moves.flatMap(({ side, part }) =>
      [
        ...sides[side].parts.map((q, k) => ({ q, next: part?.k === k ? part.loads : q.loads })),
        { q: sides[side].conflict, next: sides[side].conflict.loads },
      ].map(({ q, next }) => ({
        kind: side,
        ir: (q.perLoad.insns ?? 0) * q.loads,
        now: q.loads,
        next,
        rescale: side === 'code' ? rescale : 1,
      })),
    );
    next.budget = nextBudget(
      allParts,
      { ir: perPlanned * mixInsns(plan), planned: mixInsns(plan) },
      want.insns - got.insns,
      BIG_BUDGET - mixInsns(trialPlan),
    );
    knobsT.bodyInsnsPerReq = next.budget / scale;
    const more = t + 1 < TRIMS;
    let r = await trial(knobsT, more, 'trimming');
    let kept = { knobs: knobsT, now: next };
    // A trim refused for its instructions or branch misses alone (with those as kept, it would
    // be kept) is repaired: from its knobs, the budget and the random branches alone set by
    // what it measured, judged as it was.
    if (!r.keep && refusedForCounts(pick(got), r.tp, wanted, tols, more)) {
      const fix = countsStep(r.tp, next);
      if (fix) {
        const knobsR = withCounts(knobsT, fix);
        r = await trial(knobsR, more, 'repairing the trim');
        kept = { knobs: knobsR, now: fix };
      }
    }
    // A trim refused for what its parts' moves did to the curves is tried once more without
    // them, the random branches alone and the budget as it stands unless the instructions are
    // off (recomputed, it moved by a few instructions whatever, and the code blocks' loads
    // with it: memcached-churn's trial, its branch misses within 5% where they were 4.4%
    // over, was refused for the 256 KiB level's 2.9% more misses). It ends the trims, kept or
    // not: the next would try the same moves again.
    if (!r.keep && moves.some((m) => m.part)) {
      const counts = countsStep(got, now);
      if (counts && (await trial(withCounts(knobs, counts), false, 'trimming the counts alone')).keep)
        knobs = withCounts(knobs, counts);
      break;
    }
    if (!r.keep) break;
    const { tp, s } = r;
    // The parts now run as trimmed; the figures no run saw move as their moves say.
    for (const m of moves) {
      if (m.part) sides[m.side].parts[m.part.k].loads = m.part.loads;
    }
    const carried = { ...got };
    for (const m of moves)
      if (m.part) for (const u of unseen) carried[u] = (carried[u] ?? 0) + (m.part.moved[u] ?? 0);
    knobs = kept.knobs;
    now = kept.now;
    got = { ...carried, ...tp };
    best = s;
  }
  return knobs;
}
