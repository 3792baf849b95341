import { L1_CURVE_MAX, type CurvePoint, type PortableCpu } from '../model/index.js';
import { chainRounds, passesOf, passOrder, wholeWalks, type Passes } from './passes.js';

/** Cache lines are 64 bytes on every shipped platform; curves and rings count in lines. */
export const LINE = 64;

/** Accesses per request whose LRU stack distance, in lines, is in (lo, hi]; hi null: no bound.
 *  `median`: the distance by which half of them are reused, where a finer curve tells it. */
export interface ReuseBin {
  lo: number;
  hi: number | null;
  perReq: number;
  median?: number;
}

/** Misses per request made non-increasing in cache size (a larger LRU cache never misses
 *  more; measured points can, by noise or set conflicts). */
export function monotone(curve: CurvePoint[]): CurvePoint[] {
  const sorted = [...curve].sort((a, b) => a.bytes - b.bytes);
  let min = Infinity;
  return sorted.map((p) => ({ bytes: p.bytes, missesPerReq: (min = Math.min(min, p.missesPerReq)) }));
}

/** The reuse-distance histogram a miss-ratio curve implies, above its smallest size: the
 *  accesses between two sizes are the misses of the smaller cache less those of the larger. */
export function binsFromCurve(curve: CurvePoint[]): ReuseBin[] {
  const c = monotone(curve);
  return c.map((p, k) => ({
    lo: p.bytes / LINE,
    hi: k + 1 < c.length ? c[k + 1].bytes / LINE : null,
    perReq: p.missesPerReq - (k + 1 < c.length ? c[k + 1].missesPerReq : 0),
  }));
}

/** The distance a bin's ring aims at: the median distance of the bin's accesses where a finer
 *  curve gave it, else the geometric middle of the bin (as far as possible from both edges,
 *  where set-associative caches blur a step); twice the bound of the open bin. */
export function binTarget(b: ReuseBin): number {
  return b.hi === null ? 2 * b.lo : (b.median ?? Math.sqrt(b.lo * b.hi));
}

/** Misses per request of a curve at `bytes`, interpolated between its points in log size and
 *  log misses (linearly where a point has none), held at its ends. */
export function curveAt(curve: CurvePoint[], bytes: number): number {
  const c = monotone(curve);
  if (!c.length) return 0;
  if (bytes <= c[0].bytes) return c[0].missesPerReq;
  for (let j = 0; j + 1 < c.length; j++) {
    const [a, b] = [c[j], c[j + 1]];
    if (bytes > b.bytes) continue;
    const x = Math.log(bytes / a.bytes) / Math.log(b.bytes / a.bytes);
    return a.missesPerReq > 0 && b.missesPerReq > 0
      ? a.missesPerReq * (b.missesPerReq / a.missesPerReq) ** x
      : a.missesPerReq + x * (b.missesPerReq - a.missesPerReq);
  }
  return c[c.length - 1].missesPerReq;
}

/** Each closed bin with the median distance of its accesses on a finer curve (`fine`, of the
 *  same accesses): the size, between the bin's bounds, by which the fine curve has fallen half
 *  the way from its misses at the bin's lower bound to those at its upper one. A bin whose
 *  accesses the fine curve does not see keeps its middle. */
export function withMedians(bins: ReuseBin[], fine: CurvePoint[]): ReuseBin[] {
  return bins.map((b) => {
    if (b.hi === null) return b;
    const [lo, hi] = [b.lo * LINE, b.hi * LINE];
    const [mlo, mhi] = [curveAt(fine, lo), curveAt(fine, hi)];
    if (!(mlo - mhi > 1e-6)) return b;
    const half = (mlo + mhi) / 2;
    let [a, z] = [Math.log(lo), Math.log(hi)];
    for (let i = 0; i < 40; i++) {
      const mid = (a + z) / 2;
      if (curveAt(fine, Math.exp(mid)) > half) a = mid;
      else z = mid;
    }
    return { ...b, median: Math.exp((a + z) / 2) / LINE };
  });
}

/** A pointer-chase ring: `lines` lines walked in one cycle, `loadsPerReq` loads per request
 *  continuing where the previous request stopped. */
export interface Ring {
  lines: number;
  loadsPerReq: number;
}

/** What else touches the cache between two uses of a ring's line. Either each request
 *  touches `hotLines` lines outside the rings, drawn in turn from a footprint of
 *  `hotFootprint` lines, so r requests touch min(r x hotLines, hotFootprint) distinct ones; or,
 *  given `curve` (the outside's own misses per request at each cache size), as many as
 *  footprint theory says: a window of r requests touches U(r) distinct lines, where U grows
 *  at the miss rate of a cache of size U (dU/dr = m(U)), and `own` lines besides, touched every
 *  request. (The rings and their cursors are the process's, shared by its threads.) */
export interface Interference {
  hotLines: number;
  hotFootprint: number;
  curve?: CurvePoint[];
  /** The outside's accesses per request (at most one new line each). */
  accesses?: number;
  own?: number;
}

/** Distinct lines a program with miss curve `curve` (misses per request at each size, in
 *  bytes) and `accesses` accesses per request touches in a window of `requests` requests: the
 *  footprint U with dU/dr = m(U) (footprint theory: the footprint of a window grows by the
 *  accesses that reach past it). Between two sizes the curve is a power law (linear where the
 *  larger size has no misses, so that U approaches it); below the smallest, the power law of
 *  the first two sizes (its exponent at most 8), at most every access a miss; past the
 *  largest, its misses per request as new lines. */
export function footprint(curve: CurvePoint[], requests: number, accesses = Infinity): number {
  const c = monotone(curve).map((p) => ({ x: p.bytes / LINE, m: p.missesPerReq }));
  if (!c.length || c[0].m <= 0 || requests <= 0) return 0;
  const exponent = (a: { x: number; m: number }, b: { x: number; m: number }) =>
    b.m > 0 ? Math.log(a.m / b.m) / Math.log(b.x / a.x) : Infinity;
  // Below the smallest size: m(x) = m0 (x0/x)^k, and every access a miss (m = A) below the
  // size xc where that reaches A; U reaches xc at xc / A and x0 at t0.
  const k0 = Math.min(8, c.length > 1 ? exponent(c[0], c[1]) : 0);
  const A = Math.max(accesses, c[0].m);
  const xc = k0 > 0 ? c[0].x * Math.min(1, (c[0].m / A) ** (1 / k0)) : A > c[0].m ? 0 : c[0].x;
  const C = c[0].m * c[0].x ** k0;
  const tc = xc / A;
  const t0 = tc + (c[0].x ** (k0 + 1) - xc ** (k0 + 1)) / (C * (k0 + 1));
  if (requests <= tc) return A * requests;
  if (requests <= t0) return (xc ** (k0 + 1) + (requests - tc) * C * (k0 + 1)) ** (1 / (k0 + 1));
  let t = requests - t0;
  for (let i = 0; i < c.length; i++) {
    const a = c[i];
    const b = c[i + 1];
    if (!b) return a.x + a.m * t;
    if (b.m <= 0) {
      // m falls linearly to 0 at b.x: U = b.x - (b.x - a.x) e^(-m t / (b.x - a.x)), never past b.x.
      const w = b.x - a.x;
      return b.x - w * Math.exp((-a.m * t) / w);
    }
    // m(x) = a.m (x / a.x)^-k: the time to cross to b.x is a.x ((b.x/a.x)^(k+1) - 1) / (a.m (k+1)).
    const k = exponent(a, b);
    const cross = (a.x * ((b.x / a.x) ** (k + 1) - 1)) / (a.m * (k + 1));
    if (t <= cross) return a.x * (1 + (t * a.m * (k + 1)) / a.x) ** (1 / (k + 1));
    t -= cross;
  }
  return c[c.length - 1].x;
}

/** Distinct outside lines in `interval` requests. */
export const outside = (f: Interference, interval: number) =>
  f.curve
    ? footprint(f.curve, interval, f.accesses) + (f.own ?? 0) * Math.min(1, interval)
    : Math.min(f.hotLines * interval, Math.max(f.hotFootprint, f.hotLines));

/** The LRU stack distance of ring i's loads, with the interference correction: a ring of L
 *  lines with a loads per request walked in p passes (passesOf) reuses a line every L/a
 *  requests, or every pass where a pass walks more than its lines (a/p > L); in that time every
 *  ring j touches min(L_j, a_j x interval) lines, and the requests their outside lines. A pass
 *  that walks more than its lines reuses most within the pass, at its own size, and L of its
 *  a/p loads across passes, with the others' lines between: its distance is then the geometric
 *  mean of the two, weighted by their shares of the loads. With one pass the interval is at
 *  least a request; with rounds of every ring (the data rings, dataRounds), a round. */
export function ringDistance(rings: Ring[], i: number, f: Interference, walk: Passes = 1): number {
  const r = rings[i];
  if (r.loadsPerReq <= 0) return Infinity;
  const passes = passesOf(r, walk);
  const interval = Math.max(1 / passes, r.lines / r.loadsPerReq);
  // The outside runs in one piece between two requests: a window of part of a request holds
  // it in that part of the windows.
  let across = interval < 1 ? interval * outside(f, 1) : outside(f, interval);
  for (const o of rings) across += Math.min(o.lines, o.loadsPerReq * interval);
  const perPass = r.loadsPerReq / passes;
  if (r.lines >= perPass) return across;
  const share = r.lines / perPass;
  return Math.exp((1 - share) * Math.log(r.lines) + share * Math.log(across));
}

/** The size of ring i whose distance, interference included, is nearest `want` (by bisection:
 *  past the jump from walking within a request to reuse across requests, the distance is
 *  increasing in the size; a target inside the jump is met by the in-request walk). */
export function sizeFor(rings: Ring[], i: number, f: Interference, want: number, walk: Passes = 1): number {
  let lo = 2;
  let hi = Math.max(4, Math.ceil(want));
  const at = (L: number) =>
    ringDistance(
      rings.map((r, j) => (j === i ? { ...r, lines: L } : r)),
      i,
      f,
      walk,
    );
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (at(mid) < want) lo = mid;
    else hi = mid;
  }
  return Math.abs(at(lo) - want) <= Math.abs(at(hi) - want) ? lo : hi;
}

/** Ring sizes for a histogram: one ring per bin with loads, its size solved (by bisection,
 *  then over all rings until sizes settle) so that its distance, interference included, is the
 *  bin's target. Bins with fewer than `minPerReq` accesses get no ring (size 0). */
export function synthesizeRings(
  bins: ReuseBin[],
  f: Interference,
  walk: Passes = 1,
  minPerReq = 0.01,
): Ring[] {
  const rings: Ring[] = bins.map((b) =>
    b.perReq >= minPerReq
      ? { lines: Math.max(2, Math.round(binTarget(b))), loadsPerReq: b.perReq }
      : { lines: 0, loadsPerReq: 0 },
  );
  for (let pass = 0; pass < 30; pass++) {
    let moved = false;
    bins.forEach((b, i) => {
      if (!rings[i].lines) return;
      const L = sizeFor(rings, i, f, binTarget(b), walk);
      if (L !== rings[i].lines) moved = true;
      rings[i] = { ...rings[i], lines: L };
    });
    if (!moved) break;
  }
  return rings;
}

/** Sizes for new loads per request that keep each ring's distance: a ring walked less often
 *  reuses its lines after more of everything else, so it shrinks by what its longer round
 *  adds (and grows where it is walked more), its distance under the interference model as it
 *  was with its size and loads before. A `fixed` ring keeps its size (its distance is not its
 *  size's) and counts for the others' distances. */
export function keepDistances(
  before: Ring[],
  loads: number[],
  f: Interference,
  walk: Passes = 1,
  fixed: boolean[] = [],
): number[] {
  const want = before.map((r, i) =>
    r.lines && r.loadsPerReq > 0 && !fixed[i] ? ringDistance(before, i, f, walk) : NaN,
  );
  const after: Ring[] = before.map((r, i) => ({ lines: r.lines, loadsPerReq: r.lines ? loads[i] : 0 }));
  for (let pass = 0; pass < 10; pass++) {
    let moved = false;
    after.forEach((r, i) => {
      if (!r.lines || r.loadsPerReq <= 0 || !Number.isFinite(want[i])) return;
      const L = sizeFor(after, i, f, want[i], walk);
      if (L !== r.lines) moved = true;
      after[i] = { ...r, lines: L };
    });
    if (!moved) break;
  }
  return after.map((r) => r.lines);
}

/** Exact LRU stack distances of a trace of line numbers (a Fenwick tree over time marks each
 *  line's latest use): distance = distinct lines used since its previous use (cold: Infinity). */
export function stackDistances(trace: ArrayLike<number>): Float64Array {
  const n = trace.length;
  const tree = new Int32Array(n + 1);
  const add = (i: number, v: number) => {
    for (i++; i <= n; i += i & -i) tree[i] += v;
  };
  const prefix = (i: number) => {
    let s = 0;
    for (i++; i > 0; i -= i & -i) s += tree[i];
    return s;
  };
  const last = new Map<number, number>();
  const out = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    const x = trace[t];
    const p = last.get(x);
    if (p === undefined) out[t] = Infinity;
    else {
      out[t] = prefix(t - 1) - prefix(p) + 1;
      add(p, -1);
    }
    add(t, 1);
    last.set(x, t);
  }
  return out;
}

/** The access trace the generated body makes, for `requests` requests: each request touches
 *  its outside lines (the next `hotLines` of the outside footprint, in turn), then walks the
 *  rings from their cursors (fractional loads carried to the next request, as the generated
 *  code does): in rounds, each ring in its passes' rounds (chainRounds, passesOf with
 *  `walk`), its loads a request spread over its passes; with `whole` (code segments),
 *  a pass of a whole walk or more in whole walks from a fixed line (wholeWalks), as the
 *  generated chain does. `ring[t]` says whether access t is a ring's. */
export function ringTrace(
  rings: Ring[],
  f: Interference,
  requests: number,
  walk: Passes = 1,
  whole = false,
): { trace: number[]; ring: boolean[] } {
  const trace: number[] = [];
  const ring: boolean[] = [];
  const hot = Math.round(f.hotLines);
  const pool = Math.max(hot, Math.round(f.hotFootprint));
  let next = 0;
  let base = pool; // lines 0.. are the outside footprint
  const passes = rings.map((r) => passesOf(r, walk));
  const calls = passOrder(chainRounds(rings, walk, hot));
  const walks = rings.map((r) => {
    const order = cycle(r.lines, 7919 + r.lines);
    const start = base;
    base += r.lines;
    return { order, start, pos: 0, acc: 0 };
  });
  for (let q = 0; q < requests; q++) {
    for (let h = 0; h < hot; h++) {
      trace.push(next);
      ring.push(false);
      next = (next + 1) % pool;
    }
    for (const [i] of calls) {
      const s = walks[i];
      const r = rings[i];
      const walked = whole && wholeWalks(r, passes[i]);
      s.acc += r.loadsPerReq / passes[i] / (walked ? r.lines : 1);
      const w = Math.floor(s.acc);
      s.acc -= w;
      if (walked) s.pos = 0;
      const n = walked ? w * r.lines : w;
      for (let k = 0; k < n && r.lines; k++) {
        trace.push(s.start + s.order[s.pos]);
        ring.push(true);
        s.pos = s.order[s.pos];
      }
    }
  }
  return { trace, ring };
}

/** A single random cycle through 0..n-1 (Sattolo), as next-index links. */
function cycle(n: number, seed: number): Int32Array {
  let x = seed >>> 0 || 1;
  const rand = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * i);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) next[i] = perm[i];
  return next;
}

/** Accesses per request in each bin of a histogram, from stack distances (those after `skip`
 *  warm-up accesses, and where `only` is given, those it marks; cold misses count in the open
 *  bin). */
export function histogramOf(
  distances: Float64Array,
  bins: ReuseBin[],
  requests: number,
  skip = 0,
  only?: boolean[],
): number[] {
  const counts = bins.map(() => 0);
  for (let t = skip; t < distances.length; t++) {
    if (only && !only[t]) continue;
    const d = distances[t];
    const k = bins.findIndex((b) => d > b.lo && (b.hi === null || d <= b.hi));
    if (k >= 0) counts[k]++;
  }
  return counts.map((c) => c / requests);
}

/** A curve with its L1 points (L1_CURVE_MAX and below) taken from another where it has them:
 *  an 8-way sweep with the reuse curve's L1 misses. */
export const l1Reuse = (c: CurvePoint[], r: CurvePoint[] | undefined): CurvePoint[] =>
  c.map((q) => {
    const x = q.bytes <= L1_CURVE_MAX ? r?.find((y) => y.bytes === q.bytes) : undefined;
    return x ? { bytes: q.bytes, missesPerReq: x.missesPerReq } : q;
  });

/** A curve less another, point by point (the skeleton's measured at the same sizes), floored at 0. */
export function curveLess(a: CurvePoint[], b: CurvePoint[] | undefined): CurvePoint[] {
  return a.map((p) => ({
    bytes: p.bytes,
    missesPerReq: Math.max(0, p.missesPerReq - (b?.find((q) => q.bytes === p.bytes)?.missesPerReq ?? 0)),
  }));
}

/** Conflict misses: those of the low-associativity point over the 8-way curve's at its size. */
export function conflictExcess(
  c: Pick<PortableCpu, 'dataCurve' | 'codeCurve' | 'conflict'>,
  side: 'data' | 'code' = 'data',
): number {
  const curve = side === 'data' ? c.dataCurve : c.codeCurve;
  const at = curve.find((q) => q.bytes === c.conflict.bytes)?.missesPerReq ?? 0;
  return Math.max(0, (side === 'data' ? c.conflict.dataMissesPerReq : c.conflict.codeMissesPerReq) - at);
}
