import { chainSteps, type Profile } from '../model/index.js';

/** The most cursors a ring walk keeps in registers (with its own five, 13 of the 15 a
 *  function may use: generate/asm.ts). */
export const MAX_WALK_CHAINS = 8;

/** The fewest whole steps a cursor takes a call. A cursor costs six instructions a call (its
 *  load and store, its fraction's four), at most three a load at two steps; a ring of fewer
 *  loads a call gains nothing from a second cursor, its few loads overlapping the work around
 *  them. Without the bound, memcached's eight rings of 0.2 to 16 loads a request, eight
 *  cursors each, cost 384 instructions a request of its body's 1,000 and left its mix loop
 *  none (the tuned clone ran 10.6% more instructions than memcached). */
export const MIN_CURSOR_STEPS = 2;

/** A ring's own cursors of `chains`: no more than its lines (two cursors on one line would
 *  reuse it at once), nor than its loads a call allow (MIN_CURSOR_STEPS). */
export const chainsOf = (chains: number, lines: number, loadsPerCall: number) =>
  Math.max(1, Math.min(chains, Math.floor(lines), Math.floor(loadsPerCall / MIN_CURSOR_STEPS + 1e-9)));

/** Cursors the data rings are walked by (each ring its chainsOf): the rings carry the serial
 *  steps the original's loads take beyond the skeleton's and the body's other chased parts'
 *  (the connection's lines and the crowd groups, a chain each), and a ring of N loads walked
 *  by k cursors takes N/k steps: the fewest cursors whose rings' steps are within those, at
 *  most as many as a walk keeps in registers (MAX_WALK_CHAINS: with two loads a cycle and L1
 *  hits of four or five cycles, eight chains or so keep a core's load ports busy, past which
 *  more overlap gains nothing). A ring walked by one cursor is one chain of dependent loads,
 *  each at its full latency: Redis-aof's clone took 1.8 ns a ring load natively where its
 *  original's loads of the same footprint overlap. Without the original's counts (a profile
 *  of an older Twin): one cursor. */
export function ringChains(
  p: Profile,
  rings: { lines: number; loadsPerReq: number }[],
  rounds: number,
  otherChained: number,
): number {
  const original = chainSteps(p.body.original.chasePerReq);
  const walked = rings.filter((r) => Math.round(r.lines) > 0 && r.loadsPerReq > 0);
  if (original === null || !walked.length) return 1;
  const budget = original - (chainSteps(p.body.skeleton?.chasePerReq) ?? 0) - otherChained;
  const steps = (k: number) =>
    walked.reduce((a, r) => a + r.loadsPerReq / chainsOf(k, Math.round(r.lines), r.loadsPerReq / rounds), 0);
  for (let k = 1; k < MAX_WALK_CHAINS; k++) if (steps(k) <= budget) return k;
  return MAX_WALK_CHAINS;
}
