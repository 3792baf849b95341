import type { PortableCpu, Profile } from '../model/index.js';
import { addTotals, ZERO_TOTALS } from '../collect/cachegrind.js';
import type { PartCosts } from '../collect/cpu.js';
import { BRANCH_PART } from '../synth/layout.js';
import { hardMissRate, HARD_P, type BodyPlan } from '../synth/body.js';

/** One measured iteration: its profile and plan, the clone's figures, each part's. */
export interface Measured {
  profile: Profile;
  plan: BodyPlan;
  m: PortableCpu;
  part: (fn: string) => PortableCpu | null;
  got: Record<string, number>;
}

/** The random branches' measured misses per request, and per random branch (where too few
 *  run to tell, the formula's). */
export function branchRate({ plan, part }: Pick<Measured, 'plan' | 'part'>): { own: number; rate: number } {
  const own = part(BRANCH_PART)?.branchMissesPerReq ?? 0;
  return {
    own,
    rate: plan.hardBranchesPerReq > 1 && own > 0 ? own / plan.hardBranchesPerReq : hardMissRate(HARD_P),
  };
}

/** Each part's costs at one sweep point: its function's and, for a code segment, its blocks'
 *  (see generate/body.ts), with callgrind's recursion contexts of them (`name'2`, where a block
 *  calls a return). */
export function partTotals(q: PartCosts): PartCosts {
  const out: PartCosts = new Map();
  for (const [name, t] of q) {
    const fn = name.replace(/'\d+$/, '').replace(/_blocks$/, '');
    out.set(fn, addTotals(out.get(fn) ?? ZERO_TOTALS, t));
  }
  return out;
}
