import type { PortableCpu, Profile } from '../model/index.js';
import { plannedCounts, type BodyPlan } from '../synth/body.js';
import { blockCounts, iterationInsns, MIX_CLASSES } from '../synth/mix.js';

/** A budget no plan's fixed parts reach: the mix loop's share of it tells what they take. */
export const BIG_BUDGET = 1e8;

/** The instructions a plan's code block executes. */
export const blockInsns = (q: BodyPlan) =>
  Object.values(blockCounts(q.blockUnits)).reduce((a, b) => a + (b ?? 0), 0);

/** The instructions a plan gives its mix loop. */
export const mixInsns = (q: BodyPlan) => q.mix.itersPerReq * iterationInsns(q.mix.units);

/** The next instruction budget (the plan's, scaled): the instructions the mix loop must run
 *  next are what it ran, plus what is missing, less what the other parts will add at their
 *  measured cost per unit (a part run less than once a request: at the mean cost of its
 *  kind's); the budget is the next plan's fixed parts (`fixedNext`, as the plan estimates
 *  them) and the mix loop's share, corrected by the loop's measured cost against its planned
 *  one. */
export function nextBudget(
  parts: { kind: string; ir: number; now: number; next: number; rescale?: number }[],
  mix: { ir: number; planned: number },
  missing: number,
  fixedNext: number,
): number {
  const measured = parts.filter((q) => q.now >= 1 && q.ir > 0);
  const perUnit = (q: (typeof parts)[number]) => {
    if (q.now >= 1 && q.ir > 0) return q.ir / q.now;
    const same = measured.filter((m) => m.kind === q.kind);
    return same.length ? same.reduce((a, m) => a + m.ir / m.now, 0) / same.length : 0;
  };
  // A part's next instructions: its next count at its cost per unit, which `rescale` moves
  // where the next plan makes each unit cheaper or dearer (code blocks of fewer operations).
  const added = parts.reduce((s, q) => s + perUnit(q) * ((q.rescale ?? 1) * q.next - q.now), 0);
  const wanted = Math.max(0, mix.ir + missing - added);
  return Math.max(0, fixedNext + wanted / mixCost(mix.ir, mix.planned));
}

/** The mix loop's measured instructions per planned one, within 0.8 to 1.25 (its call and
 *  set-up cost instructions of their own: a loop planned to run little says little of its
 *  cost per planned instruction); 1 where either is unknown. */
export function mixCost(ir: number, planned: number): number {
  return planned > 0 && ir > 0 ? Math.min(1.25, Math.max(0.8, ir / planned)) : 1;
}

/** What a measured clone runs per request beyond its plan's counts, by class (null without a
 *  measured mix): the plan's next overhead, re-measured each iteration rather than summed. */
export function overhead(p: Profile, plan: BodyPlan, m: PortableCpu): Record<string, number> | null {
  if (!m.mix) return null;
  const planned = plannedCounts(p, plan);
  return Object.fromEntries(
    MIX_CLASSES.map((c) => [c, m.mix!.shares[c] * m.mix!.insnsPerReq - (planned[c] ?? 0)]),
  );
}
