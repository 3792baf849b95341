import { chainSteps, type Profile } from '../model/index.js';

/** The most cursors a ring walk keeps in registers (with its own five, 13 of the 15 a
 *  function may use: generate/asm.ts). */
export const MAX_WALK_CHAINS = 8;

/** Cursors each data ring is walked by: the rings carry the serial steps the original's loads
 *  take beyond the skeleton's and the body's other chased parts' (the connection's lines and
 *  the crowd groups, a chain each), and a ring of N loads walked by k cursors takes N/k steps:
 *  k = N / steps, at least 1 and at most as many as a walk keeps in registers (MAX_WALK_CHAINS:
 *  with two loads a cycle and L1 hits of four or five cycles, eight chains or so already keep
 *  a core's load ports busy, past which more overlap gains nothing). A ring walked by one
 *  cursor is one chain of dependent loads, each at its full latency: Redis-aof's clone took
 *  1.8 ns a ring load natively where its original's loads of the same footprint overlap.
 *  Without the original's counts (a profile of an older Twin): one cursor. */
export function ringChains(p: Profile, ringLoads: number, otherChained: number): number {
  const original = chainSteps(p.body.original.chasePerReq);
  if (original === null || ringLoads <= 0) return 1;
  const skeleton = chainSteps(p.body.skeleton?.chasePerReq) ?? 0;
  const steps = original - skeleton - otherChained;
  if (steps <= ringLoads / MAX_WALK_CHAINS) return MAX_WALK_CHAINS;
  return Math.max(1, Math.min(MAX_WALK_CHAINS, Math.round(ringLoads / steps)));
}

/** A ring's own cursors: no more than its lines (two cursors on one line would reuse it at
 *  once). */
export const chainsOf = (chains: number, lines: number) => Math.max(1, Math.min(chains, Math.floor(lines)));
