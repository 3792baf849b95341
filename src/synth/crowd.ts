import {
  L1_SIZES,
  reuseCurves,
  tableMisses,
  type PortableCpu,
  type ReuseStreamTable,
} from '../model/index.js';
import { footprint, LINE } from './rings.js';

/** A crowd group: `lines` lines `stride` bytes apart (a power of two), walked in turn. In a
 *  cache of S sets they lie in min(lines, S x 64 / stride) sets, so each use finds its line
 *  behind the group's other lines of that set: a cache of fewer ways misses every use, one of
 *  more ways none. Groups of several sizes and strides reproduce how a target's own layout
 *  crowds some sets (objects at one offset of page-aligned blocks, thread arenas aligned
 *  alike), which a reuse distance does not say and a random ring does not do. */
export interface CrowdGroup {
  lines: number;
  stride: number;
  loadsPerReq: number;
}

/** Share of a group's uses that miss an LRU cache of `sets` sets and `ways` ways (bursts of
 *  uses: what else the request touches does not come between them). Line i of the group lies
 *  in set i mod m of the m sets its stride reaches. */
export function groupMissShare(lines: number, stride: number, sets: number, ways: number): number {
  let missed = 0;
  for (const [g, n] of groupSets(lines, stride, sets)) if (g > ways) missed += n * g;
  return missed / lines;
}

/** How a group's lines fill the sets its stride reaches in a cache of `sets` sets: [lines a
 *  set, sets holding that many], the fuller sets first (line i lies in set i mod m of m). */
function groupSets(lines: number, stride: number, sets: number): [number, number][] {
  const period = stride / LINE;
  const m = sets <= period ? 1 : Math.min(lines, sets / period);
  const lo = Math.floor(lines / m);
  const fuller = lines - lo * m;
  return [
    [lo + 1, fuller],
    [lo, m - fuller],
  ];
}

/** The fewest units a crowd group (data or code) runs at a time (see body_burst). */
export const CONFLICT_BURST = 256;

/** Misses a burst of a group's uses costs besides those groupMissShare counts, its own lines'
 *  and the rest's, in a cache of `sets` sets and `ways` ways whose every set holds `background`
 *  lines (on the mean) that the rest of the program reuses between two bursts, in the same
 *  order each time (code, a ring's cycle). In a set the group reaches with g lines, where
 *  g + b > ways the rest's uses push the group's lines out before the next burst, and the burst
 *  pushes the rest's out before their next use; in LRU order each eviction takes the line due
 *  next, so about every line of the set misses once, up to the ways (an LRU set simulated:
 *  11 ways, 8 lines of the rest and 4 of a group, 11.9 misses a burst; 14, 10 and 5, 13.9).
 *  Where the rest alone overflows the set (b >= ways) it misses anyway, and the group's lines
 *  once a burst; where the group alone does, its uses all miss (groupMissShare). A fractional
 *  b is that many sets of one line more. */
export function groupRefills(
  lines: number,
  stride: number,
  sets: number,
  ways: number,
  background: number,
): { own: number; rest: number } {
  const perSet = (g: number, b: number) => {
    if (g > ways || g + b <= ways) return { own: 0, rest: 0 };
    if (b >= ways) return { own: g, rest: 0 };
    const all = Math.min(g + b, ways);
    return { own: (all * g) / (g + b), rest: (all * b) / (g + b) };
  };
  const b0 = Math.floor(background);
  const f = background - b0;
  const out = { own: 0, rest: 0 };
  for (const [g, n] of groupSets(lines, stride, sets))
    for (const [b, share] of [
      [b0, 1 - f],
      [b0 + 1, f],
    ]) {
      const r = perSet(g, b);
      out.own += n * share * r.own;
      out.rest += n * share * r.rest;
    }
  return out;
}

/** Misses per use of a group at a cell: its lines beyond the ways, and its bursts' refills,
 *  its own and the rest's (one burst a CONFLICT_BURST uses). */
export function groupMissesPerUse(lines: number, stride: number, c: Cell, background = 0): number {
  const r = groupRefills(lines, stride, c.sets, c.ways, background);
  return groupMissShare(lines, stride, c.sets, c.ways) + (r.own + r.rest) / CONFLICT_BURST;
}

/** Misses per request of a random ring of lines reused at stack distance `distance` (lines),
 *  `loads` a request, in a cache of `sets` sets and `ways` ways: its lines fall in the sets at
 *  random, so the lines between two uses that share the used line's set are Poisson with mean
 *  distance / sets, and a use misses where they are `ways` or more. */
export function randomMisses(distance: number, loads: number, sets: number, ways: number): number {
  const lambda = distance / sets;
  let term = Math.exp(-lambda);
  let below = 0;
  for (let k = 0; k < ways; k++) {
    below += term;
    term *= lambda / (k + 1);
  }
  return loads * Math.max(0, 1 - below);
}

/** The ways from which a group misses no more: a group has CROWD_WAYS lines at most. Groups of
 *  more than 8 lines miss in the 8-way caches too, as a server's page-aligned buffers do
 *  (nginx's data: 53.8 misses a request at 32 KiB and 8 ways, 0.5 at 16), which the rings,
 *  placed by reuse distance, cannot do without missing at 16 ways as well. */
export const CROWD_WAYS = 16;

/** One geometry of the data table a crowd fit follows. */
export interface Cell {
  sets: number;
  ways: number;
}

/** The sizes of L1 a side's crowd fit follows. Code: the L1 sizes a clone is built for
 *  (L1_SIZES); fitted from 8 KiB to 256 KiB, memcached's code groups went to the 8 to 16 KiB
 *  caches' tens of misses per 1,000 instructions and left its 32 KiB 4-way L1 at 2.1 against
 *  5.2. Data: 8 KiB to 256 KiB, as the benches measured it before code had groups (narrowed,
 *  nginx's data fit goes from 105 loads a request of groups 2 and 4 KiB apart to 0.6; not
 *  yet measured so). */
export const crowdSizes = (stream: 'D' | 'I') => (stream === 'I' ? L1_SIZES : { lo: 8 << 10, hi: 256 << 10 });

/** The L1 geometries crowd groups are fitted to: 2 to CROWD_WAYS - 1 ways, `sizes`, set counts
 *  a table holds (powers of two). */
export function crowdCells(t: ReuseStreamTable, sizes = L1_SIZES): Cell[] {
  const cells: Cell[] = [];
  for (let k = t.lo; k <= t.hi; k++)
    for (let ways = 2; ways < CROWD_WAYS; ways++) {
      const bytes = 2 ** k * ways * LINE;
      if (bytes >= sizes.lo && bytes <= sizes.hi) cells.push({ sets: 2 ** k, ways });
    }
  return cells;
}

/** Misses per request of a table at a cell (0 where the table does not hold it). */
export const cellMisses = (t: ReuseStreamTable, c: Cell) =>
  tableMisses(t, c.sets * c.ways * LINE, c.ways) ?? 0;

/** The group shapes a fit chooses from: 2 to CROWD_WAYS lines, strides from 1 KiB to 128 KiB
 *  (one set of every L1 of 2,048 sets or fewer). */
export const CROWD_SHAPES: { lines: number; stride: number }[] = [];
for (let lines = 2; lines <= CROWD_WAYS; lines++)
  for (let s = 10; s <= 17; s++) CROWD_SHAPES.push({ lines, stride: 2 ** s });

/** Most groups a clone runs. */
export const CROWD_GROUPS = 6;

/** Groups (at most CROWD_GROUPS, each at least `min` loads a request) whose misses at `cells`
 *  come nearest `want` (misses per request wanted of them at each cell), each cell weighted by
 *  `weight` (1 / the size of an error that matters there), each cell's sets holding
 *  `background` lines of the rest (groupMissesPerUse): non-negative least squares, then again
 *  over the largest groups alone. */
export function fitCrowd(
  cells: Cell[],
  want: number[],
  weight: number[],
  min = 0.05,
  background: number[] = cells.map(() => 0),
): CrowdGroup[] {
  const column = (g: { lines: number; stride: number }) =>
    cells.map((c, i) => weight[i] * groupMissesPerUse(g.lines, g.stride, c, background[i]));
  const b = want.map((v, i) => v * weight[i]);
  // Shapes whose misses are the same at every cell are one column (the smallest stride kept);
  // a shape that crowds no cell's sets is none (its refills alone would make it a costly
  // way to add a few misses everywhere: two lines 32 KiB apart, 465 loads a request).
  const seen = new Set<string>();
  const crowds = (g: { lines: number; stride: number }) =>
    cells.some((c) => groupMissShare(g.lines, g.stride, c.sets, c.ways) > 0);
  const shapes = CROWD_SHAPES.map((g) => ({ ...g, col: column(g) })).filter(({ col, ...g }) => {
    const key = col.join(',');
    if (seen.has(key) || !crowds(g)) return false;
    seen.add(key);
    return true;
  });
  let x = nnls(
    shapes.map((s) => s.col),
    b,
  );
  const top = x
    .map((v, j) => ({ v, j }))
    .filter((e) => e.v >= min)
    .sort((p, q) => q.v - p.v)
    .slice(0, CROWD_GROUPS)
    .map((e) => e.j);
  if (!top.length) return [];
  x = nnls(
    top.map((j) => shapes[j].col),
    b,
  );
  return top
    .map((j, k) => ({ lines: shapes[j].lines, stride: shapes[j].stride, loadsPerReq: x[k] }))
    .filter((g) => g.loadsPerReq >= min)
    .sort((p, q) => p.stride - q.stride || p.lines - q.lines);
}

/** Non-negative least squares (Lawson and Hanson): the x >= 0 minimising |A x - b|, A given by
 *  its columns. */
export function nnls(columns: number[][], b: number[]): number[] {
  const n = columns.length;
  const m = b.length;
  const x = new Array<number>(n).fill(0);
  const passive = new Set<number>();
  const residual = () => b.map((v, i) => v - columns.reduce((s, c, j) => s + c[i] * x[j], 0));
  const gradient = (r: number[]) => columns.map((c) => c.reduce((s, v, i) => s + v * r[i], 0));
  const scale = Math.max(1e-12, ...b.map(Math.abs));
  for (let outer = 0; outer < 3 * n; outer++) {
    const w = gradient(residual());
    let best = -1;
    for (let j = 0; j < n; j++)
      if (!passive.has(j) && w[j] > 1e-10 * scale && (best < 0 || w[j] > w[best])) best = j;
    if (best < 0) break;
    passive.add(best);
    for (let inner = 0; inner < 3 * n; inner++) {
      const P = [...passive];
      const z = leastSquares(
        P.map((j) => columns[j]),
        b,
        m,
      );
      if (z.every((v) => v > 0)) {
        P.forEach((j, k) => (x[j] = z[k]));
        break;
      }
      // Step toward z until a variable reaches zero; it leaves the passive set.
      let alpha = 1;
      P.forEach((j, k) => {
        if (z[k] <= 0) alpha = Math.min(alpha, x[j] / (x[j] - z[k]));
      });
      P.forEach((j, k) => {
        x[j] += alpha * (z[k] - x[j]);
        if (x[j] <= 1e-12) {
          x[j] = 0;
          passive.delete(j);
        }
      });
    }
  }
  return x;
}

/** Unconstrained least squares over a few columns, by the normal equations (Gaussian
 *  elimination with partial pivoting; a tiny ridge keeps equal columns solvable). */
function leastSquares(cols: number[][], b: number[], m: number): number[] {
  const k = cols.length;
  const a = cols.map((ci) => cols.map((cj) => dot(ci, cj, m)));
  const y = cols.map((c) => dot(c, b, m));
  for (let i = 0; i < k; i++) a[i][i] += 1e-9 * (a[i][i] || 1);
  for (let i = 0; i < k; i++) {
    let p = i;
    for (let r = i + 1; r < k; r++) if (Math.abs(a[r][i]) > Math.abs(a[p][i])) p = r;
    [a[i], a[p]] = [a[p], a[i]];
    [y[i], y[p]] = [y[p], y[i]];
    for (let r = i + 1; r < k; r++) {
      const f = a[r][i] / a[i][i];
      for (let c = i; c < k; c++) a[r][c] -= f * a[i][c];
      y[r] -= f * y[i];
    }
  }
  const z = new Array<number>(k).fill(0);
  for (let i = k - 1; i >= 0; i--) {
    let s = y[i];
    for (let c = i + 1; c < k; c++) s -= a[i][c] * z[c];
    z[i] = s / a[i][i];
  }
  return z;
}

const dot = (u: number[], v: number[], m: number) => {
  let s = 0;
  for (let i = 0; i < m; i++) s += u[i] * v[i];
  return s;
};

/** Requests between two bursts of a group, for the rest's lines it meets: a group of 32 loads a
 *  request bursts every 8 requests, those of more loads (whose refills count most) more often,
 *  and a program's footprint grows little past a few requests (nginx's code: 1,106 lines in 4
 *  requests, 1,152 in 8, 1,190 in 16). */
const BURST_WINDOW = CONFLICT_BURST / 32;

/** Lines of the rest of a program that each set of a cell holds between two bursts of a group:
 *  the original's footprint of BURST_WINDOW requests (footprint theory on its reuse curve),
 *  spread evenly over the cell's sets, as the clone's layout spreads its code and its rings'
 *  random lines spread on the mean. */
export function crowdBackground(o: PortableCpu, cells: Cell[], stream: 'D' | 'I'): number[] {
  if (!o.reuse) return cells.map(() => 0);
  const curves = reuseCurves(o.reuse);
  const lines =
    stream === 'I'
      ? footprint(curves.code, BURST_WINDOW, o.insnsPerReq)
      : footprint(curves.data, BURST_WINDOW, o.dataRefsPerReq);
  return cells.map((c) => lines / c.sets);
}
