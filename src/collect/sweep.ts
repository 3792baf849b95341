import type { CurvePoint, Platform, PortableCpu, ReuseTable } from '../model/index.js';
import { median } from '../util/stats.js';
import type { CgTotals } from './cachegrind.js';

/** What one Valgrind run simulates: the L1s and one last level. */
export interface Geometry {
  I1: Platform['I1'];
  D1: Platform['D1'];
  LL: Platform['LLC'];
}

/** The size sweep behind the portable profile: each run simulates one L1 size (instruction and
 *  data, 8-way) and one last-level size (16-way): eleven points of each miss-ratio curve and
 *  a 4-way L1 point from six pairs of runs. The sizes bracket every shipped platform's caches.
 *  A last level sees only what its L1 misses, so the scored ones sit behind the L1s a server
 *  puts before them: 256 KiB behind 32 KiB (haswell-ep's L2; a level tuned behind a smaller
 *  L1 sees misses that server's L2 never does), 1 MiB behind the 4-way 64 KiB (graviton2's
 *  L2). The 256 KiB level has 8 ways, as haswell-ep's L2, the one platform cache of that
 *  size: a ring's reuses all lie at one distance, and near a cache's size its misses turn
 *  on the ways, so a clone tuned at 16 ways misses otherwise at 8. */
export const SWEEP: { l1: number; ll: number; l1Assoc?: number; llAssoc?: number }[] = [
  { l1: 8 << 10, ll: 4 << 20 },
  { l1: 16 << 10, ll: 2 << 20 },
  { l1: 32 << 10, ll: 256 << 10, llAssoc: 8 },
  { l1: 64 << 10, ll: 16 << 20 },
  { l1: 128 << 10, ll: 32 << 20 },
  // The conflict point: a 4-way L1 of a size the curve has at 8 ways.
  { l1: 64 << 10, ll: 1 << 20, l1Assoc: 4 },
];
/** The sweep point of skylake-sp's L1s and haswell-ep's L2: 32 KiB, 8 ways; 256 KiB, 8 ways. */
const SKYLAKE_POINT = 2;

export const sweepGeometry = (s: (typeof SWEEP)[number]): Geometry => ({
  I1: { size: s.l1, assoc: s.l1Assoc ?? 8, line: 64 },
  D1: { size: s.l1, assoc: s.l1Assoc ?? 8, line: 64 },
  LL: { size: s.ll, assoc: s.llAssoc ?? 16, line: 64 },
});

/** The portable profile of a target from differential totals at each sweep point. Each point's
 *  misses are taken per instruction and scaled by the median instruction count, so that one
 *  run's extra background work does not bend the curve. */
export function portableFrom(
  points: CgTotals[],
  requests: number,
  mix: PortableCpu['mix'],
  reuse?: ReuseTable,
): PortableCpu {
  const per = (x: number) => x / requests;
  const insns = median(points.map((t) => per(t.Ir)));
  const scaled = (t: CgTotals, misses: number) => (t.Ir > 0 ? (misses / t.Ir) * insns : 0);
  const curve = (f: (t: CgTotals, s: (typeof SWEEP)[number]) => CurvePoint[]) =>
    points.flatMap((t, k) => f(t, SWEEP[k])).sort((a, b) => a.bytes - b.bytes);
  const l1 = (s: (typeof SWEEP)[number], p: CurvePoint) => (s.l1Assoc ? [] : [p]);
  const k = SWEEP.findIndex((s) => s.l1Assoc);
  const c = points[k];
  return {
    requests,
    insnsPerReq: insns,
    dataRefsPerReq: median(points.map((t) => per(t.Dr + t.Dw))),
    dataCurve: curve((t, s) => [
      ...l1(s, { bytes: s.l1, missesPerReq: scaled(t, t.D1mr + t.D1mw) }),
      { bytes: s.ll, missesPerReq: scaled(t, t.DLmr + t.DLmw) },
    ]),
    codeCurve: curve((t, s) => [
      ...l1(s, { bytes: s.l1, missesPerReq: scaled(t, t.I1mr) }),
      { bytes: s.ll, missesPerReq: scaled(t, t.ILmr) },
    ]),
    conflict: {
      bytes: SWEEP[k].l1,
      assoc: SWEEP[k].l1Assoc!,
      dataMissesPerReq: scaled(c, c.D1mr + c.D1mw),
      codeMissesPerReq: scaled(c, c.I1mr),
    },
    condBranchesPerReq: median(points.map((t) => per(t.Bc))),
    indirectPerReq: median(points.map((t) => per(t.Bi))),
    branchMissesPerReq: median(points.map((t) => scaled(t, t.Bcm + t.Bim))),
    mix,
    ...(reuse ? { reuse } : {}),
  };
}

/** The sweep points a clone is scored on most closely, and which a trim measures: the 32 KiB
 *  8-way L1s with the 256 KiB 8-way level (skylake-sp's and haswell-ep's L1s, haswell-ep's
 *  L2) and the 4-way 64 KiB L1s (graviton2's). */
export const KEY_POINTS = [SKYLAKE_POINT, SWEEP.findIndex((s) => s.l1Assoc)];
