import type { CurvePoint, Profile } from '../model/index.js';
import { footprint, LINE, type ReuseBin } from './rings.js';

/** The body's part that follows the connection count: `loadsPerReq` loads a request round
 *  `lines` lines of the served connection's own (each line once a request), so that they are
 *  reused once the other connections have sent theirs, as a server's state per connection is.
 *  `bin`: the data reuse bin those accesses fall in under the profiled workload, whose ring
 *  gives them up. */
export interface ConnPart {
  lines: number;
  loadsPerReq: number;
  bin: number | null;
}

export const NO_CONN: ConnPart = { lines: 0, loadsPerReq: 0, bin: null };

/** How much more a size's misses must be with more connections to count: a share of the
 *  original's misses there (two pair-method measurements differ by a few percent at the same
 *  workload), and at least CONN_FLOOR_MPKI misses per 1,000 instructions. */
const CONN_SHARE = 0.1;
const CONN_FLOOR_MPKI = 0.5;

/** Accesses whose reuse distance grows with the connections: where the original measured
 *  with more connections misses more than under its workload, at least as many accesses
 *  moved past that size. The largest such rise over the data curve's sizes is their count.
 *  They rise at every size between their distance under the workload and their distance
 *  with more connections, so the smallest size that rises by half as many bounds the bin
 *  they were in (the bin below it), whose ring gives them up (at most all of its loads). */
export function connPart(p: Pick<Profile, 'body' | 'source'>, bins: ReuseBin[]): ConnPart {
  const o = p.body.original;
  const more = p.body.moreConnections;
  if (!more) return NO_CONN;
  const floor = (CONN_FLOOR_MPKI * o.insnsPerReq) / 1000;
  const at = (c: CurvePoint[], bytes: number) => c.find((q) => q.bytes === bytes)?.missesPerReq;
  const rises = [...o.dataCurve]
    .sort((a, b) => a.bytes - b.bytes)
    .flatMap((q) => {
      const wide = at(more.cpu.dataCurve, q.bytes);
      const rise = wide === undefined ? 0 : wide - q.missesPerReq;
      return rise > Math.max(CONN_SHARE * q.missesPerReq, floor) ? [{ rise, bytes: q.bytes }] : [];
    });
  if (!rises.length) return NO_CONN;
  const count = Math.max(...rises.map((r) => r.rise));
  const first = rises.find((r) => r.rise >= count / 2)!;
  const bin = bins.findIndex((b) => b.hi !== null && b.hi * LINE === first.bytes);
  if (bin < 0) return NO_CONN;
  // The part's lines come round once every connection has sent: where the lines a window of
  // that many requests touches (footprint theory on the original's own curve) pass the bin,
  // the part would miss where the original hits (nginx-site's, 38 lines on 8 connections: 31
  // misses a request at 32 KiB 16-way, the original 3.9 in all).
  const window = footprint(o.dataCurve, p.source.connections, o.dataRefsPerReq);
  if (window > bins[bin].hi!) return NO_CONN;
  const loadsPerReq = Math.min(count, bins[bin].perReq);
  const lines = Math.round(loadsPerReq);
  return lines >= 1 ? { lines, loadsPerReq, bin } : NO_CONN;
}

/** The bins less the connection part's accesses. */
export function withoutConn(bins: ReuseBin[], c: ConnPart): ReuseBin[] {
  return bins.map((b, i) => (i === c.bin ? { ...b, perReq: Math.max(0, b.perReq - c.loadsPerReq) } : b));
}
