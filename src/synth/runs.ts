import { L1_CURVE_MAX, REUSE_CURVE_LL, tableMisses, type ReuseTable } from '../model/index.js';
import { LINE, type ReuseBin } from './rings.js';

/** The most lines a ring walks in order: a 4 KiB page, past which a core's prefetchers stop. */
export const MAX_RUN = 64;

/** Data misses per request of the unified stream at `bytes` (its reuse curve's geometry, else
 *  16 ways), all or (`seq`) the sequential ones; null where the table does not hold it. */
function dataMisses(t: ReuseTable, bytes: number, seq: boolean): number | null {
  const ways = REUSE_CURVE_LL.find(([kib]) => kib << 10 === bytes)?.[1] ?? 16;
  if (seq) return t.US ? tableMisses(t.US, bytes, ways) : null;
  const all = tableMisses(t.U, bytes, ways);
  const code = tableMisses(t.UI, bytes, ways);
  return all === null || code === null ? null : all - code;
}

/** Share of the data accesses reused between `lo` and `hi` bytes (hi null: beyond lo) that
 *  are sequential (next to a recent data line: a copy's, a scan's); null where the table does
 *  not tell. Where the bin holds too few accesses for its own share, the share of every access
 *  beyond lo. */
export function sequentialShare(t: ReuseTable, lo: number, hi: number | null): number | null {
  const [d0, s0] = [dataMisses(t, lo, false), dataMisses(t, lo, true)];
  if (d0 === null || s0 === null || d0 <= 0) return null;
  const [d1, s1] = hi === null ? [0, 0] : [dataMisses(t, hi, false), dataMisses(t, hi, true)];
  const clamp = (x: number) => Math.min(1, Math.max(0, x));
  if (d1 !== null && s1 !== null && d0 - d1 > 0.05 * d0) return clamp((s0 - s1) / (d0 - d1));
  return clamp(s0 / d0);
}

/** Lines each data ring walks in order before it jumps to a random other run of its lines:
 *  where a bin's accesses are reused beyond the L1s and a share s of them are sequential, runs
 *  of 1 / (1 - s) lines (the mean run when each access goes on with probability s), at most
 *  MAX_RUN; else 1 (a random cycle). A ring is one cycle through its lines either way, so
 *  every reuse distance, and with it every simulated cache's misses, is the same: what changes
 *  is what a real core's prefetchers and TLB make of the walk (see docs/body.md, data rings). */
export function ringRuns(t: ReuseTable | undefined, bins: ReuseBin[]): number[] {
  return bins.map((b) => {
    const lo = b.lo * LINE;
    const share = t && lo > L1_CURVE_MAX ? sequentialShare(t, lo, b.hi === null ? null : b.hi * LINE) : null;
    if (share === null) return 1;
    return share >= 1 - 1 / MAX_RUN ? MAX_RUN : Math.max(1, Math.round(1 / (1 - share)));
  });
}
