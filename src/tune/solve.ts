import type { CurvePoint, PortableCpu } from '../model/index.js';
import {
  binTarget,
  keepDistances,
  LINE,
  monotone,
  type Interference,
  type ReuseBin,
  type Ring,
} from '../synth/rings.js';
import { at, scoredSize, UNSCORED_SLACK } from './figures.js';
import { oneDistance, type Passes } from '../synth/passes.js';
import {
  cellMisses,
  crowdCells,
  crowdSizes,
  CONFLICT_BURST,
  crowdBackground,
  fitCrowd,
  groupMissesPerUse,
  groupRefills,
  type Cell,
  type CrowdGroup,
} from '../synth/crowd.js';
import { crowdWeights } from '../synth/body.js';

/** Where a part's accesses reuse: the cache size (in lines) at which half its accesses miss,
 *  interpolated in log size between the sweep's points; past either end, the end's size, the
 *  nearest the measurement allows, so that a resize moves a part no further than it shows.
 *  Taken as half the smallest size, nginx's first data ring (79 lines, bin 8 to 16 KiB) hit
 *  at 8 KiB on most of its uses and grew to 214 lines at the first step, and its clone's
 *  32 KiB 8-way data misses went from 48 to 116 a request (the original's 34): in each of
 *  four tunings, each of which then kept an iteration before it or after a worse one. */
export function medianDistance(curve: CurvePoint[], accesses: number): number {
  const c = monotone(curve);
  const f = c.map((p) => p.missesPerReq / accesses);
  if (!c.length || accesses <= 0) return NaN;
  if (f[0] < 0.5) return c[0].bytes / LINE;
  for (let j = 0; j + 1 < c.length; j++) {
    if (f[j + 1] < 0.5) {
      const x = (f[j] - 0.5) / Math.max(1e-9, f[j] - f[j + 1]);
      return Math.exp(Math.log(c[j].bytes) + x * (Math.log(c[j + 1].bytes) - Math.log(c[j].bytes))) / LINE;
    }
  }
  return c[c.length - 1].bytes / LINE;
}

/** New sizes of the rings (or segments): each moved by the ratio of its bin's target distance
 *  to the median distance its accesses were measured at (reuse distance grows about in
 *  proportion to a ring's size: its own lines and what other parts touch in its longer round),
 *  at most 4x either way, and left alone within 15% of the target, inside Valgrind's noise;
 *  with a gain below 1, part of the way (in log size). */
export function resize(lines: number[], bins: ReuseBin[], measured: (number | null)[], gain = 1): number[] {
  return lines.map((L, k) => {
    const d = measured[k];
    if (!L || d === null || !Number.isFinite(d)) return L;
    const ratio = binTarget(bins[k]) / d;
    if (Math.abs(Math.log(ratio)) < Math.log(1.15)) return L;
    // A gain below 1 takes that part of the move, in log size.
    return Math.max(2, Math.round(L * Math.min(4, Math.max(0.25, ratio)) ** gain));
  });
}

/** Non-negative loads per bin so that the parts' misses, with the rest's, meet the wanted
 *  curve: least squares weighted by each point's tolerance (projected coordinate descent), each
 *  part's miss fraction at each size given as a column (measured, or the ideal step of its bin
 *  where its size moves). */
export function solveLoads(
  want: number[],
  rest: number[],
  columns: number[][],
  tolerance: number[],
  start: number[],
): number[] {
  const a = start.map((x) => Math.max(0, x));
  const w = tolerance.map((t) => 1 / (t * t));
  const target = want.map((x, j) => x - rest[j]);
  const pred = target.map((_, j) => columns.reduce((s, col, k) => s + a[k] * col[j], 0));
  for (let sweep = 0; sweep < 300; sweep++) {
    for (let k = 0; k < a.length; k++) {
      const col = columns[k];
      let num = 0;
      let den = 0;
      for (let j = 0; j < target.length; j++) {
        num += w[j] * col[j] * (target[j] - pred[j]);
        den += w[j] * col[j] * col[j];
      }
      if (den <= 0) continue;
      const next = Math.max(0, a[k] + num / den);
      for (let j = 0; j < target.length; j++) pred[j] += (next - a[k]) * col[j];
      a[k] = next;
    }
  }
  return a;
}

/** Curves of one side on the reuse curve's geometries (see reuseCurves): what is wanted,
 *  what the clone got, its skeleton's alone, and each part's. */
export interface ShapeCurves {
  want: CurvePoint[];
  got: CurvePoint[];
  skeleton: CurvePoint[];
  parts: (CurvePoint[] | null)[];
}

/** How much more a reuse-curve point may be off in the solve than a scored one: the points
 *  between the sweep's sizes, and past their ways, shape the rings and segments between the
 *  scored points without holding them as closely. */
export const SHAPE_SLACK = 10;

/** One side's (data or code) next rings from a measured iteration: sizes moved by their
 *  median distances, loads solved against the wanted curve (and, given `shape`, the reuse
 *  curve as well, each point with SHAPE_SLACK times its tolerance). What the rest of the clone
 *  misses (the measured total less the parts') is the skeleton's own misses (measured alone)
 *  and the misses the parts cause it by evicting its lines (and the body's hot lines): at each
 *  size, taken in proportion to the lines the parts bring in per request, their misses at the
 *  smallest size, so that fewer ring loads mean fewer of those too. */
export function nextSide(
  bins: ReuseBin[],
  rings: Ring[],
  partCurves: (CurvePoint[] | null)[],
  want: CurvePoint[],
  got: CurvePoint[],
  skeleton: CurvePoint[],
  absPerReq: number,
  tol: number,
  gain: number,
  f: Interference,
  keepSizes = false,
  shape?: ShapeCurves,
  walk: Passes = 1,
  walkedKeep = false,
  /** Parts that stay as they are (the part per connection: its distance is the connections',
   *  its loads the connections' rise): their measured misses are the rest's. */
  fixed: boolean[] = [],
) {
  // The rows of the solve: the wanted curve's sizes, then the reuse curve's.
  const rowsOf = (w: CurvePoint[], g: CurvePoint[], skel: CurvePoint[], parts: (CurvePoint[] | null)[]) =>
    monotone(w).map((p) => ({
      bytes: p.bytes,
      want: p.missesPerReq,
      got: at(monotone(g), p.bytes),
      parts: parts.map((c) => at(c, p.bytes)),
      skel: Math.min(at(skel, p.bytes), at(monotone(g), p.bytes)),
      tol: Math.max(tol * p.missesPerReq, absPerReq),
    }));
  const rows = [
    ...rowsOf(want, got, skeleton, partCurves).map((r) => ({
      ...r,
      tol: r.tol * (scoredSize(r.bytes) ? 1 : UNSCORED_SLACK),
    })),
    ...(shape ? rowsOf(shape.want, shape.got, shape.skeleton, shape.parts) : []).map((r) => ({
      ...r,
      tol: r.tol * SHAPE_SLACK,
    })),
  ];
  const sum = (r: (typeof rows)[number], keep: boolean) =>
    r.parts.reduce((s, x, k) => (!!fixed[k] === keep ? s + x : s), 0);
  const partsAt = rows.map((r) => sum(r, false));
  // A fixed part's own misses, as measured, are the rest's: its loads stay.
  const fixedAt = rows.map((r) => sum(r, true));
  // The parts' lines brought in per request: their misses at the smallest size.
  const traffic = (partsAt[0] ?? 0) + (fixedAt[0] ?? 0);
  const evicted = rows.map((r, j) =>
    traffic > 0 ? Math.max(0, r.got - partsAt[j] - fixedAt[j] - r.skel) / traffic : 0,
  );
  // Where a part reuses: from its reuse curve where there is one (finer, and free of the
  // 8-way points' set conflicts), else from its sweep curve.
  const distanceCurve = (k: number) => shape?.parts[k] ?? partCurves[k];
  const lines = keepSizes
    ? rings.map((r) => r.lines)
    : resize(
        rings.map((r) => r.lines),
        bins,
        // A segment walked in passes reuses its lines at two or more distances (within a
        // request and across the outside), whose median says little of its mean: its size is
        // the model's, from its loads (keepDistances below). So is a part walked more than
        // once a request (with `walkedKeep`: the code segments, whole walks back to back)
        // whose median lies below the curve's first size, where only a guess stands for it:
        // memcached-churn's code segment of 108 lines walked 115.9 times a request hit at
        // 8 KiB on 52% of its uses and missed at 16 KiB on 43%; its median, taken as 64
        // lines, grew it to 379 (the bin's distance, 319, by the model) and its clone missed
        // 109 times a request at 32 KiB against the original's 15.
        rings.map((r, k) => {
          const c = distanceCurve(k);
          if (!r.lines || !c || fixed[k] || !oneDistance(r, walk)) return null;
          const m = monotone(c);
          const first = m[0];
          if (walkedKeep && r.loadsPerReq > r.lines && first && first.missesPerReq < 0.5 * r.loadsPerReq)
            return null;
          // Past the curve's largest size a median says only that it lies beyond: where the
          // bin's target does as well (the open bin's, twice its bound), the part is as far
          // as can be told. nginx-site's ring for the accesses past 32 MiB (992,402 lines,
          // median taken at 32 MiB against 64) grew to 2.4 and 3.3 million lines, a set-up
          // of hundreds of MiB in each worker process.
          const end = (m.at(-1)?.bytes ?? Infinity) / LINE;
          const d = medianDistance(c, r.loadsPerReq);
          return d >= end && binTarget(bins[k]) >= end ? null : d;
        }),
        gain,
      );
  // A part keeps its measured miss fractions where its size stands; where it moves, its bin's
  // step; an absent part, its sizes kept, none.
  const measured = (k: number) => rings[k].lines && lines[k] === rings[k].lines && rings[k].loadsPerReq > 0;
  const columns = rings.map((r, k) => {
    if (fixed[k]) return rows.map(() => 0);
    const col = rows.map((row) =>
      measured(k) && partCurves[k]
        ? Math.min(1, row.parts[k] / r.loadsPerReq)
        : !keepSizes && row.bytes <= bins[k].lo * LINE
          ? 1
          : 0,
    );
    return col.map((x, j) => x + evicted[j] * col[0]);
  });
  const solved = solveLoads(
    rows.map((r) => r.want),
    rows.map((r, j) => r.skel + fixedAt[j] + evicted[j] * (fixedAt[0] ?? 0)),
    columns,
    rows.map((r) => r.tol),
    rings.map((r) => r.loadsPerReq),
  );
  // A trust region: the model (measured columns, eviction in proportion) holds near the
  // measured point only, so a part's loads at most halve or double (from nothing, to a few)
  // in one move.
  const loads = rings.map((r, k) => {
    const a = r.lines ? r.loadsPerReq : 0;
    const next = Math.min(2 * a + 4, Math.max(a / 2, solved[k]));
    return Math.max(0, a + gain * (next - a));
  });
  if (keepSizes) return { lines, loads };
  // Loads moved at a size kept would move the part's reuse: fewer loads, a longer round, more
  // of the rest between two uses of a line. Its size follows so that its distance, and its
  // measured miss fractions with it, stay where they were.
  return {
    lines: keepDistances(
      rings.map((r, k) => ({ lines: lines[k], loadsPerReq: r.lines ? r.loadsPerReq : 0 })),
      loads,
      f,
      walk,
      fixed,
    ),
    loads,
  };
}

/** The steps that may resize the code segments; later ones move only their blocks a request.
 *  A segment resized takes other lines in the L1's sets (their layout is planned from the
 *  sizes), and near the 32 KiB cliff that reshapes what misses more than the step meant to.
 *  With the sizes kept, each segment's measured misses per block hold for the next step
 *  (see docs/tuner.md, one iteration). */
export const CODE_SIZE_STEPS = 2;

/** The next crowd groups of a side (the data's, or the code's: `stream`): fitted again to what
 *  the original misses at the crowd cells less what the clone measured there besides its groups
 *  (the whole clone's misses less the groups' own, as measured), then a `gain` of the way from
 *  the groups now to the fit. */
export function nextCrowd(
  original: PortableCpu,
  clone: PortableCpu,
  groups: PortableCpu | null,
  now: CrowdGroup[],
  gain: number,
  stream: 'D' | 'I' = 'D',
): CrowdGroup[] {
  const [o, c] = [original.reuse?.[stream], clone.reuse?.[stream]];
  if (!o || !c) return now;
  const cells = crowdCells(o, crowdSizes(stream));
  const background = crowdBackground(original, cells, stream);
  // The groups' own misses, as measured (else as modelled), and the rest's that their bursts
  // push out (in the rest's, as measured, and in the fit's model of a group).
  const sum = (f: (g: CrowdGroup) => number) => now.reduce((a, g) => a + g.loadsPerReq * f(g), 0);
  const own = (cell: Cell, i: number) =>
    groups?.reuse
      ? cellMisses(groups.reuse[stream], cell) +
        sum((g) => groupRefills(g.lines, g.stride, cell.sets, cell.ways, background[i]).rest / CONFLICT_BURST)
      : sum((g) => groupMissesPerUse(g.lines, g.stride, cell, background[i]));
  const want = cells.map((cell, i) => cellMisses(o, cell) - cellMisses(c, cell) + own(cell, i));
  const fit = fitCrowd(cells, want, crowdWeights(original, cells, stream), undefined, background);
  const key = (g: CrowdGroup) => `${g.lines}/${g.stride}`;
  const moves = new Map<string, { g: CrowdGroup; from: number; to: number }>();
  for (const g of now) moves.set(key(g), { g, from: g.loadsPerReq, to: 0 });
  for (const g of fit) moves.set(key(g), { g, from: moves.get(key(g))?.from ?? 0, to: g.loadsPerReq });
  return [...moves.values()]
    .map(({ g, from, to }) => ({ lines: g.lines, stride: g.stride, loadsPerReq: from + gain * (to - from) }))
    .filter((g) => g.loadsPerReq >= 0.01);
}
