import type { SyscallRate } from '../model/index.js';

/** One traced window's calls by name (its serving threads', beyond the skeleton's), the
 *  requests it sent, and the requests the target had been sent before it since it started;
 *  each window's load opened the workload's connections anew. */
export interface CallWindow {
  sent: number;
  before: number;
  counts: Map<string, number>;
}

/** A call's parts over the windows: a request's, a connection's (`perConn`), and a cache's
 *  filling from a cold start (`cold`: its pages, and the pages a request touches). */
export interface CallParts {
  perReq: number;
  perConn?: number;
  cold?: { pages: number; touches: number };
}

/** A call's per-connection part counts where it comes to at least this share of the call in
 *  the window of fewest requests: below it, a pooled rate a request serves as well. */
export const CONNECTION_SHARE = 0.1;
/** A cold part counts where it comes to at least this share of the call in the first window,
 *  fills its cache to 1 - 1/e within the windows' requests, and leaves at most COLD_RESIDUAL
 *  of the squared error of the fit without it: two more parameters on five windows take some
 *  of any noise. Of 2,000 draws of up to 5% of noise on each window's count of a steady call,
 *  0.6% kept a cold part at 0.05 (1.3% at 0.1); of 6,000 caches with Poisson noise (300 to
 *  5,000 pages, filled in 3,000 to 40,000 requests), 98% were told. */
export const COLD_SHARE = 0.1;
const COLD_RESIDUAL = 0.05;
/** Windows needed to tell a connection's part from a request's; a cold part, one more. */
const MIN_WINDOWS = 3;
/** Requests that fill a cold cache to 1 - 1/e, tried from 10 to 10 million (a factor 1.19). */
const FILL_GRID = Array.from({ length: 81 }, (_, i) => 10 ** (1 + i * 0.075));

/** Each call's parts where a part of it comes with each connection or with a cache filling,
 *  fitted over the windows by non-negative least squares: a window's count of a call is
 *  c * connections + r * sent + P * (e^(-before/m) - e^(-(before + sent)/m)), the last the
 *  misses of P pages touched uniformly at P/m a request. `connections` 0: no connection part
 *  (a protocol whose connections open with no request of their own). PostgreSQL's backend
 *  reads its catalogs as it starts: a load of few requests makes more of those calls a
 *  request than one of many (its file reads a statement fell from 1,147 bytes at 700
 *  statements a second to 113 at 2,380 on the same 8 connections, while a pooled rate made
 *  203 at every load). A fresh cluster reads its tables into its shared buffers as the
 *  statements first touch their pages: 1,083 pread64 calls in its first 1,000 transactions
 *  at scale 1, then 502, 236, 135, 65, 44, 17, 14, 7, none. Calls made a request alone are
 *  left out. */
export function callHistory(windows: CallWindow[], connections: number): Map<string, CallParts> {
  const out = new Map<string, CallParts>();
  if (windows.length < MIN_WINDOWS) return out;
  const first = windows.reduce((a, w) => (w.before < a.before ? w : a));
  const fewest = windows.reduce((a, w) => (w.sent < a.sent ? w : a));
  const sent = windows.map((w) => w.sent);
  const last = Math.max(...windows.map((w) => w.before + w.sent));
  const base = connections > 0 ? [windows.map(() => connections), sent] : [sent];
  for (const name of new Set(windows.flatMap((w) => [...w.counts.keys()]))) {
    const y = windows.map((w) => w.counts.get(name) ?? 0);
    const plain = nnls(base, y);
    let cold: { fit: Fit; m: number } | null = null;
    if (windows.length > MIN_WINDOWS)
      for (const m of FILL_GRID.filter((x) => x <= last)) {
        const fill = windows.map((w) => Math.exp(-w.before / m) - Math.exp(-(w.before + w.sent) / m));
        const fit = nnls([...base, fill], y);
        if (fit.coef[base.length] > 0 && (!cold || fit.sse < cold.fit.sse)) cold = { fit, m };
      }
    const pages = cold ? cold.fit.coef[base.length] : 0;
    const firstCold = cold
      ? pages * (Math.exp(-first.before / cold.m) - Math.exp(-(first.before + first.sent) / cold.m))
      : 0;
    const keepCold =
      cold !== null &&
      pages >= 1 &&
      cold.fit.sse <= COLD_RESIDUAL * plain.sse &&
      firstCold >= COLD_SHARE * (first.counts.get(name) ?? 0);
    const fit = keepCold ? cold!.fit : plain;
    const perConn = connections > 0 ? fit.coef[0] : 0;
    const keepConn =
      perConn > 0 && perConn * connections >= CONNECTION_SHARE * (fewest.counts.get(name) ?? 0);
    if (!keepConn && !keepCold) continue;
    out.set(name, {
      perReq: fit.coef[base.length - 1],
      ...(keepConn ? { perConn: perConn } : {}),
      ...(keepCold ? { cold: { pages: Math.round(pages), touches: pages / cold!.m } } : {}),
    });
  }
  return out;
}

interface Fit {
  coef: number[];
  sse: number;
}

/** Least squares of y on the columns with every coefficient at least 0: the best of the
 *  unconstrained fits on each subset of the columns whose coefficients are all so (a few
 *  columns: every subset is tried). */
export function nnls(cols: number[][], y: number[]): Fit {
  let best: Fit = { coef: cols.map(() => 0), sse: y.reduce((a, v) => a + v * v, 0) };
  for (let mask = 1; mask < 1 << cols.length; mask++) {
    const idx = cols.map((_, j) => j).filter((j) => mask & (1 << j));
    const a = idx.map((j) => idx.map((k) => dot(cols[j], cols[k])));
    const b = idx.map((j) => dot(cols[j], y));
    const x = solve(a, b);
    if (!x || x.some((v) => v < 0)) continue;
    const coef = cols.map(() => 0);
    idx.forEach((j, i) => (coef[j] = x[i]));
    const sse = y.reduce((acc, v, i) => acc + (v - cols.reduce((s, c, j) => s + coef[j] * c[i], 0)) ** 2, 0);
    if (sse < best.sse) best = { coef, sse };
  }
  return best;
}

const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);

/** a x = b by Gaussian elimination with partial pivoting; null where a is singular. */
function solve(a: number[][], b: number[]): number[] | null {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    const p = m
      .slice(c)
      .reduce((best, row, i) => (Math.abs(row[c]) > Math.abs(m[best][c]) ? c + i : best), c);
    if (!(Math.abs(m[p][c]) > 1e-10 * Math.abs(a[c][c]))) return null;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  return m.map((row, i) => row[n] / row[i]);
}

/** The replay with each call's parts apart: `perConn` (its `perReq` then the requests' own)
 *  for a protocol whose connection opens with a request of its own, `cold` for a cache's. */
export function splitReplay(replay: SyscallRate[], parts: Map<string, CallParts>): SyscallRate[] {
  const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
  return replay.map((c) => {
    const p = parts.get(c.name);
    if (!p) return c;
    return {
      ...c,
      perReq: r4(p.perReq),
      ...(p.perConn ? { perConn: r4(p.perConn) } : {}),
      ...(p.cold ? { cold: { pages: p.cold.pages, touches: Math.round(p.cold.touches * 1e6) / 1e6 } } : {}),
    };
  });
}
