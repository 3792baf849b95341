import type { PortableCpu, Profile } from '../model/index.js';
import { PART_PREFIX } from '../collect/valgrind.js';
import { BRANCH_PART, partName } from '../synth/layout.js';
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

/** The part a function of the clone belongs to: a code segment's blocks (`twin_code_3_blocks`,
 *  see generate/body.ts) are its function's; every code crowd group's (`twin_code_conflict_2`)
 *  make one part, as the data groups' walk does; a function not of the body's prefix, none. */
export function partOf(fn: string): string | null {
  if (!fn.startsWith(PART_PREFIX)) return null;
  const f = fn.replace(/_blocks$/, '');
  const crowd = partName('code', 'conflict');
  return f.startsWith(`${crowd}_`) ? crowd : f;
}
