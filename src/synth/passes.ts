import type { ReuseBin, Ring } from './rings.js';

/** Mispredictions a code segment costs a request: its entry's indirect jump, its exit, and
 *  the predictor's aliasing among its blocks' branches (the bench's clones: 2 to 6 a segment,
 *  the larger segments more). */
export const SEGMENT_MISPREDICTS = 4;

/** The most passes a request a code segment is walked in. A segment walked in one pass and more
 *  than once a request reuses most of its lines at its own size, back to back; in passes with
 *  the other parts between, at its size and the lines the others touch in the part of a
 *  request between its passes: any distance between its size and the request's footprint (see
 *  docs/body.md, code passes). Each pass past the first is a call more: its entry and its exit
 *  two mispredictions more. */
export const CODE_PASSES = 4;

/** The passes the code segments of `bins` may take where the body is to mispredict
 *  `branchPerReq` times a request: what the segments leave of it, two mispredictions a pass
 *  past a segment's first; one where they leave too little for a second. memcached's body is
 *  to mispredict 6 times a request, redis's 11, nginx's 160. */
export function codePasses(branchPerReq: number, bins: ReuseBin[]): number {
  const segments = bins.filter((b) => b.perReq >= 0.01).length;
  if (!segments) return 1;
  const spare = branchPerReq - SEGMENT_MISPREDICTS * segments;
  return Math.max(1, Math.min(CODE_PASSES, 1 + Math.floor(spare / (2 * segments))));
}

/** How the parts of one side are walked in a request: at most so many passes each (a number:
 *  the code segments, each in as few as keep a pass from walking past its own start), or all
 *  of them in `every` rounds, each round a pass of every part (the data rings, see
 *  dataRounds). */
export type Passes = number | { every: number };

/** The passes a part of L lines and a loads a request is walked in. With `{ every: R }`, R
 *  (one for a part with no lines). With a number, at most that many: enough that no pass walks
 *  past its own start (a <= passes x L), one where it is walked less than once a request; the
 *  code segments take up to CODE_PASSES, spread over the body (see chainRounds). */
export function passesOf(r: Ring, passes: Passes = 1): number {
  if (!(r.lines > 0)) return 1;
  if (typeof passes !== 'number') return Math.max(1, passes.every);
  if (r.loadsPerReq <= r.lines) return 1;
  return Math.max(1, Math.min(passes, Math.ceil(r.loadsPerReq / r.lines)));
}

/** Whether the tuner may take a part's median distance for its distance: walked in one pass,
 *  or in rounds of every part (dataRounds) with no pass past its own start. A pass among
 *  others that walks more than its lines reuses most of them at its own size, back to back,
 *  and the rest across the other parts. */
export function oneDistance(r: Ring, passes: Passes = 1): boolean {
  const n = passesOf(r, passes);
  return n === 1 || (typeof passes !== 'number' && r.loadsPerReq / n <= r.lines);
}

/** The rounds (0 .. R - 1, R the most passes of any part) in which each part is walked: a part
 *  of p passes in rounds spread evenly over them; each part of one pass in the round whose
 *  lines so far are fewest (the largest parts first, by the lines they touch a request), the
 *  lines outside the parts (`outsideLines` a request, run between a request's last round and
 *  the next one's first) counted in the last round. A round walks its parts of several passes
 *  first, then those of one: the lines between two passes of a part are then about even
 *  whichever passes they are (see docs/body.md, code passes). */
export function chainRounds(rings: Ring[], walk: Passes = 1, outsideLines = 0): number[][] {
  const passes = rings.map((r) => passesOf(r, walk));
  const rounds = Math.max(1, ...passes);
  const load = new Array<number>(rounds).fill(0);
  load[rounds - 1] += outsideLines;
  const touched = (r: Ring) => (r.lines > 0 ? Math.min(r.lines, r.loadsPerReq) : 0);
  const out: number[][] = rings.map(() => []);
  rings.forEach((r, i) => {
    if (passes[i] <= 1) return;
    for (let j = 0; j < passes[i]; j++) {
      const k = Math.floor((j * rounds) / passes[i]);
      out[i].push(k);
      load[k] += touched(r) / passes[i];
    }
  });
  const single = rings.map((_, i) => i).filter((i) => passes[i] <= 1);
  single.sort((a, b) => touched(rings[b]) - touched(rings[a]) || a - b);
  for (const i of single) {
    let k = 0;
    for (let j = 1; j < rounds; j++) if (load[j] < load[k] - 1e-9) k = j;
    out[i].push(k);
    load[k] += touched(rings[i]);
  }
  return out;
}

/** The order of a request's passes, as [part, round] pairs, from each part's rounds
 *  (chainRounds): round by round, in each the parts of several passes first, then those of
 *  one, each in index order. The generated body calls its segments in this order, and
 *  ringTrace, its model, walks them so. */
export function passOrder(rounds: number[][]): [number, number][] {
  const total = Math.max(1, ...rounds.flat().map((k) => k + 1));
  const parts = rounds
    .map((_, i) => i)
    .sort((a, b) => Number(rounds[a].length <= 1) - Number(rounds[b].length <= 1) || a - b);
  const out: [number, number][] = [];
  for (let k = 0; k < total; k++) for (const i of parts) if (rounds[i].includes(k)) out.push([i, k]);
  return out;
}

/** Whether a code segment's pass (of `passes` a request) walks it whole: where a pass's share
 *  of its blocks a request is at least its lines, it is walked in whole walks from its first
 *  block, its walks a request a fraction carried from request to request (the same blocks a
 *  request on the mean). A whole walk enters and leaves at the same blocks every time, which a
 *  predictor learns: in the bench's memcached and redis clones, a segment walked so
 *  mispredicted 0.00 to 0.03 times a request, from the carried cursor 1.9 to 2.7 (see
 *  docs/body.md, whole walks). Crowd groups (a stride) are walked in bursts. */
export const wholeWalks = (s: { lines: number; loadsPerReq: number; stride?: number }, passes = 1) =>
  !s.stride && s.lines > 0 && s.loadsPerReq / passes >= s.lines;

/** Blocks a request of the segments walked whole, at their lines as the chain lays them out
 *  (whole lines; by each segment's multiple in `scale`, a request type's): a block of a whole
 *  walk goes on to the next without counting down (see generate/chain.ts), an ALU instruction
 *  fewer than a block of a walk from a cursor. */
export const wholeBlocks = (segments: Ring[], rounds: number[][], scale: number[] = []) =>
  segments.reduce(
    (a, r, i) =>
      a +
      (wholeWalks({ lines: Math.round(r.lines), loadsPerReq: r.loadsPerReq }, rounds[i]?.length ?? 1)
        ? r.loadsPerReq * (scale[i] ?? 1)
        : 0),
    0,
  );
