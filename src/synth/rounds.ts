import { synthesizeRings, type Interference, type ReuseBin } from './rings.js';

/** Instructions a ring's call costs besides its loads: the call and return, its arguments,
 *  its cursor's load and store, the carried fraction's add and conditional moves. */
export const RING_CALL_INSNS = 12;
/** The share of the body's instructions its rings' calls may take in rounds past the first. */
const ROUND_SHARE = 0.05;
/** The most rounds a request the data rings are walked in. */
export const DATA_ROUNDS = 32;
/** The most loads a call, as a multiple of its lines, that leave a ring walked in one call a
 *  request (memcached's, nginx's and Redis's rings of their first bins, 1.3, 1.3 and 1.6 times;
 *  PostgreSQL's, 5.4, 2.6, 1.5 and 1.0). */
const WRAP_MOST = 2;

/** Rounds a request the data rings are walked in, each round a pass of every ring with its
 *  loads a request spread evenly (`{ every: R }`): the fewest, among powers of two, in which no
 *  ring synthesized for `bins` walks past its own start in a pass; at most DATA_ROUNDS, and as
 *  many as the calls' cost allows in ROUND_SHARE of the body's `insnsPerReq`. A ring walked in
 *  one call a request, more times than it has lines, reuses most of them at its own size and
 *  the rest after everything else in the request; and a ring walked in one piece puts all of
 *  its lines, or none, between two uses of a nearer ring's. PostgreSQL's data reuses 629
 *  accesses a statement from 32 to 64 KiB and 678 from 64 to 128 KiB: in one call each, the
 *  rings of those bins (363 lines walked 629 times, 593 walked 678) missed 1,420 times at
 *  64 KiB, against 761 for PostgreSQL, and 1,369 at its 4-way 64 KiB L1 against 790; replayed
 *  in 16 rounds, the generated order's stack distances give 762, 537, 629 and 678 accesses
 *  in the bins from 8 KiB up against 789, 510, 629 and 678 (in one round: 333, 259, 62 and
 *  1,283). */
export function dataRounds(bins: ReuseBin[], f: Interference, insnsPerReq: number): number {
  // In one call, a ring walked fewer than WRAP_MOST times its lines keeps most of its loads at
  // its distance: rounds only where one is walked more.
  const once = synthesizeRings(bins, f).filter((r) => r.lines);
  if (once.every((r) => r.loadsPerReq <= WRAP_MOST * r.lines)) return 1;
  const most = Math.min(DATA_ROUNDS, (ROUND_SHARE * insnsPerReq) / (RING_CALL_INSNS * once.length));
  let R = 1;
  while (2 * R <= most) {
    const rings = synthesizeRings(bins, f, { every: R });
    if (rings.every((r) => !r.lines || r.loadsPerReq / R <= r.lines)) break;
    R *= 2;
  }
  return R;
}
