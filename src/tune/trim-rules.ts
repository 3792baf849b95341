import { AIM, toleranceErrors } from './figures.js';

/** At most this many trims of the kept iteration. */
export const TRIMS = 2;

/** A trim aims closer than tuning does: the instruction count and the branch misses answer
 *  to the budget and the random branches almost alone, a trim costs a third of an iteration's runs,
 *  and a figure left near the edge crosses it when original or clone move a little in
 *  validation. */
export const TRIM_AIM = AIM / 2;

/** How much further off than kept, in tolerances, a figure already past AIM may come out of a
 *  trim: a trim's runs of a figure it does not move still spread, and a cap at the kept
 *  error would refuse good trims for that noise alone. */
export const TRIM_NOISE = 0.25;

/** Whether a trim's figures are closer as a whole than the kept ones (the root sum of squares
 *  of their errors in tolerances is smaller) with none worse than kept by more than it may
 *  spread: a figure within AIM stays within it, one past AIM goes at most TRIM_NOISE
 *  further; a cap at the worst kept figure alone let a trim trade one figure far off for
 *  another. Where another trim may follow (`more`), the instructions and branch misses,
 *  which it sets almost alone (`trimStep`), may go as far as their tolerance, so a trim
 *  that brings the curves closer is not refused for counts the next one sets right (see
 *  docs/tuner.md, trims). */
export function trimKeeps(
  kept: Record<string, number>,
  trial: Record<string, number>,
  want: Record<string, number>,
  tols: { tol: number; mpkiTol: number; abs: number },
  more = false,
): boolean {
  const errs = (g: Record<string, number>) => toleranceErrors(want, g, tols.tol, tols.mpkiTol, tols.abs);
  const rss = (e: Record<string, number>) => Math.sqrt(Object.values(e).reduce((s, x) => s + x * x, 0));
  const [a, b] = [errs(kept), errs(trial)];
  const within = (k: string) => (more && (k === 'insns' || k === 'branch') ? 1 : AIM);
  return (
    rss(b) < rss(a) &&
    Object.entries(b).every(([k, e]) => e <= ((a[k] ?? 0) > AIM ? a[k] + TRIM_NOISE : within(k)))
  );
}

/** Whether a trim was refused for its instructions or branch misses alone: with those as
 *  kept, it would have been kept (`trimKeeps`). Those the budget and the random branches set
 *  almost alone, so a repair from its knobs can keep what it moved. */
export function refusedForCounts(
  kept: Record<string, number>,
  trial: Record<string, number>,
  want: Record<string, number>,
  tols: { tol: number; mpkiTol: number; abs: number },
  more = false,
): boolean {
  return (
    !trimKeeps(kept, trial, want, tols, more) &&
    trimKeeps(kept, { ...trial, insns: kept.insns, branch: kept.branch }, want, tols, more)
  );
}

/** A trim's next instruction budget and random branches, or null where neither is off: the
 *  budget moved by the instructions missing at the mix loop's measured cost per planned one
 *  (where they are off by more than `tol`), the random branches by the misses missing at
 *  their measured rate (where those are off by more than `branchTol` a request). */
export function trimStep(
  got: { insns: number; branch: number },
  want: { insns: number; branch: number },
  now: { budget: number; hard: number },
  perPlanned: number,
  rate: number,
  tol: number,
  branchTol: number,
): { budget: number; hard: number } | null {
  const insnsOff = Math.abs(got.insns - want.insns) > tol * want.insns;
  const branchOff = Math.abs(got.branch - want.branch) > branchTol && rate > 0;
  if (!insnsOff && !branchOff) return null;
  return {
    budget: insnsOff ? Math.max(0, now.budget + (want.insns - got.insns) / perPlanned) : now.budget,
    hard: branchOff ? Math.max(0, now.hard + (want.branch - got.branch) / rate) : now.hard,
  };
}

/** A part as a trim sees it: its loads (or blocks) a request now, its measured misses per
 *  load at every tuned figure (the kept iteration's), and whether no trim may move it. */
export interface TrimPart {
  loads: number;
  perLoad: Record<string, number>;
  still?: boolean;
}

/** How much of what a code segment's own misses per block say a trim takes: a block run more
 *  a request pushes other code out of the cache as well, so the clone's misses move by
 *  more than the segment's own. */
export const CODE_TRIM_GAIN = 0.5;

/** How much of what a ring's own misses per load say a trim for a last level takes: fewer
 *  loads a request of a ring leave the others' lines longer in the cache, so the level's
 *  misses move by more than the ring's own. */
export const LEVEL_TRIM_GAIN = 0.5;

/** A trim's move of one part for the figure `key`, or null where that figure is within
 *  TRIM_AIM of its tolerance (`tolOf`). Each part run at least once a request that misses
 *  there may take what is missing at its measured misses per load (times `gain`), at
 *  most a quarter more or less; what that moves at every figure is its change of loads at
 *  the part's measured misses per load there. The move kept is the one that leaves `key`
 *  and the `judged` figures closest (the sum of their squared errors, in tolerances), since
 *  the ring missing most at 32 KiB may miss as often at 256 KiB. No move where it would take
 *  a figure the trim's runs do not see (`unseen`) further off than it is and past AIM. Where
 *  the solve of all the rings stalls short of one point, moving other rings each iteration,
 *  this moves one part alone. */
export function partTrim(
  key: string,
  got: Record<string, number>,
  want: Record<string, number>,
  parts: TrimPart[],
  tolOf: (k: string) => number,
  unseen: string[] = [],
  judged: string[] = [],
  gain = 1,
): { k: number; loads: number; moved: Record<string, number>; cost: number } | null {
  if (
    got[key] === undefined ||
    want[key] === undefined ||
    Math.abs(got[key] - want[key]) <= TRIM_AIM * tolOf(key)
  )
    return null;
  const figures = [...new Set([key, ...judged, ...unseen])].filter(
    (f) => got[f] !== undefined && want[f] !== undefined,
  );
  let best: { k: number; loads: number; moved: Record<string, number>; cost: number } | null = null;
  parts.forEach((q, k) => {
    if (q.still || q.loads < 1 || !(q.loads * (q.perLoad[key] ?? 0) > 0)) return;
    const loads = Math.min(
      1.25 * q.loads,
      Math.max(0.75 * q.loads, q.loads + (gain * (want[key] - got[key])) / q.perLoad[key]),
    );
    const moved = Object.fromEntries(Object.entries(q.perLoad).map(([f, r]) => [f, (loads - q.loads) * r]));
    for (const u of unseen) {
      if (got[u] === undefined || want[u] === undefined) continue;
      const off = got[u] - want[u];
      if (Math.abs(off + (moved[u] ?? 0)) > Math.max(Math.abs(off), AIM * tolOf(u))) return;
    }
    const cost = figures.reduce((c, f) => c + ((got[f] + (moved[f] ?? 0) - want[f]) / tolOf(f)) ** 2, 0);
    if (!best || cost < best.cost - 1e-12) best = { k, loads, moved, cost };
  });
  return best;
}
