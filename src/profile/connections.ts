import type { SyscallRate } from '../model/index.js';

/** One traced window's calls by name (its serving threads', beyond the skeleton's) and the
 *  requests it sent; each window's load opened the workload's connections anew. */
export interface CallWindow {
  sent: number;
  counts: Map<string, number>;
}

/** A call's per-connection part counts where it comes to at least this share of the call in
 *  the window of fewest requests: below it, a pooled rate a request serves as well. */
export const CONNECTION_SHARE = 0.1;
/** Windows needed to tell the two parts apart. */
const MIN_WINDOWS = 3;

/** Each call's calls a connection opens with and calls a request, where a part of it comes
 *  with each connection: each window opened `connections` anew, so its count of a call is
 *  c * connections + r * sent, fitted by least squares over the windows (c and r not
 *  negative). PostgreSQL's backend reads its catalogs as it starts: a load of few requests
 *  makes more of those calls a request than one of many (its file reads a statement fell from
 *  1,147 bytes at 700 statements a second to 113 at 2,380 on the same 8 connections, while a
 *  pooled rate made 203 at every load). Calls without such a part are left out. */
export function perConnection(
  windows: CallWindow[],
  connections: number,
): Map<string, { perConn: number; perReq: number }> {
  const out = new Map<string, { perConn: number; perReq: number }>();
  if (windows.length < MIN_WINDOWS || connections <= 0) return out;
  const n = windows.length;
  const fewest = windows.reduce((a, w) => (w.sent < a.sent ? w : a));
  const sMean = windows.reduce((a, w) => a + w.sent, 0) / n;
  const sVar = windows.reduce((a, w) => a + (w.sent - sMean) ** 2, 0);
  if (sVar <= 0) return out;
  for (const name of new Set(windows.flatMap((w) => [...w.counts.keys()]))) {
    const y = windows.map((w) => w.counts.get(name) ?? 0);
    const yMean = y.reduce((a, b) => a + b, 0) / n;
    const perReq = Math.max(0, windows.reduce((a, w, i) => a + (w.sent - sMean) * (y[i] - yMean), 0) / sVar);
    const fixed = yMean - perReq * sMean; // the count of each window's connections
    if (fixed <= 0 || fixed < CONNECTION_SHARE * (fewest.counts.get(name) ?? 0)) continue;
    out.set(name, { perConn: fixed / connections, perReq });
  }
  return out;
}

/** The replay with each call's per-connection part apart (`perConn`, its `perReq` then the
 *  requests' own), for a protocol whose connection opens with a request of its own. */
export function splitReplay(
  replay: SyscallRate[],
  parts: Map<string, { perConn: number; perReq: number }>,
): SyscallRate[] {
  const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
  return replay.map((c) => {
    const p = parts.get(c.name);
    return p ? { ...c, perReq: r4(p.perReq), perConn: r4(p.perConn) } : c;
  });
}
