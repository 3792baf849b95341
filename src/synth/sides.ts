import {
  L1_CURVE_MAX,
  TARGETS,
  l1Points,
  reuseCurves,
  type CurvePoint,
  type PortableCpu,
} from '../model/index.js';
import {
  binsFromCurve,
  curveAt,
  curveLess,
  l1Reuse,
  LINE,
  monotone,
  withMedians,
  type ReuseBin,
} from './rings.js';

/** How far apart a side's 8-way point and its reuse curve may be at the scored L1 size (32 KiB)
 *  for the reuse curve to describe it: memcached's data misses there are 24.3 a request at 8
 *  ways and 19.0 on the reuse curve (1.28 times), nginx's 45.5 and 8.7 (5.2 times: its lines
 *  crowd some sets, page-aligned buffers' first lines). */
const REUSE_AGREES = 1.5;

/** Whether a side's misses are its reuse distances' (the reuse curve at 12 to 16 ways), to
 *  within REUSE_AGREES at the scored L1 size, so that rings and segments, whose lines spread
 *  evenly over the sets, are placed by it; where the target's lines crowd some sets instead,
 *  its 8-way points say more of what a ring must do there than the reuse curve. */
export function followsReuse(o: PortableCpu, side: 'data' | 'code'): boolean {
  if (!o.reuse) return false;
  const bytes = 32 << 10;
  const eight = at(side === 'data' ? o.dataCurve : o.codeCurve, bytes);
  const reuse = at(reuseCurves(o.reuse)[side], bytes);
  const floor = (0.05 * o.insnsPerReq) / 1000;
  return Math.max(eight, reuse, floor) <= REUSE_AGREES * Math.max(Math.min(eight, reuse), floor);
}

const at = (c: CurvePoint[], bytes: number) => c.find((q) => q.bytes === bytes)?.missesPerReq ?? 0;

/** The reuse bins of both sides, each a ring or segment of the body: from the 8-way curves less
 *  the skeleton's (`s`), where the reuse tables tell, with each bin's median distance. */
export function sideBins(
  o: PortableCpu,
  s: PortableCpu | null | undefined,
): { dataBins: ReuseBin[]; codeBins: ReuseBin[] } {
  // Where both sides have reuse tables, each bin's ring aims at the median distance of the
  // bin's accesses on the reuse curve (free of the 8-way points' set conflicts, and finer):
  // memcached's accesses between 256 KiB and 1 MiB are mostly reused within 384 KiB, and a ring
  // in the bin's middle missed at 1 MiB what the original never does there.
  const [fo, fs] = o.reuse && (!s || s.reuse) ? [reuseCurves(o.reuse), s?.reuse && reuseCurves(s.reuse)] : [];
  const medians = (bins: ReuseBin[], side: 'data' | 'code') =>
    fo && followsReuse(o, side) ? withMedians(bins, curveLess(fo[side], fs?.[side])) : bins;
  // Last-level bins cut at the reuse curve's sizes where one ring, a step at its distance,
  // would be off at a size within its bin by more than a cache level's worst error allows:
  // memcached-churn's accesses between 4 and 16 MiB reuse from 8 to 14 MiB.
  const allowed = (m: number) => Math.max(TARGETS.cacheWorst * m, (TARGETS.smallAbs * o.insnsPerReq) / 1000);
  const cut = (b: ReuseBin[]) =>
    fo ? splitBins(b, curveLess(fo.data, fs?.data), L1_CURVE_MAX / LINE, allowed) : b;
  // A side whose 8-way misses are mostly its lines crowding some sets (not its reuse curve's):
  // the rings follow the reuse curve at the L1 sizes, and the crowd groups the crowding, in
  // groups of up to CROWD_WAYS lines a set, which miss at 8 ways and not at 16.
  const dataBins =
    fo && !followsReuse(o, 'data')
      ? cut(
          binsFromCurve(
            curveLess(l1Reuse(o.dataCurve, fo.data), s ? l1Reuse(s.dataCurve, fs?.data) : undefined),
          ),
        )
      : medians(cut(binsFromCurve(curveLess(o.dataCurve, s?.dataCurve))), 'data');
  // Code reuse from the L1 points alone: a last-level point's extra code misses are data
  // evicting code, which no code segment should supply (the data rings and the tuner do).
  const codeBins = medians(binsFromCurve(curveLess(l1Points(o.codeCurve), s?.codeCurve)), 'code');
  return { dataBins, codeBins };
}

/** The bins from `fromLines` on cut at a finer curve's sizes (of the same accesses), each
 *  piece's accesses its share of the bin's by that curve, then neighbours joined again, from
 *  the smallest, while together they hold at most `allowed(m)` accesses, m the misses at the
 *  joined piece's upper bound: a ring is a step at its distance, so a bin's accesses are
 *  missed wholly on one side of it, and a cache size within the bin is off by what the bin
 *  holds on the other side. */
export function splitBins(
  bins: ReuseBin[],
  fine: CurvePoint[],
  fromLines: number,
  allowed: (missesAbove: number) => number,
): ReuseBin[] {
  return bins.flatMap((b) => {
    if (b.hi === null || b.lo < fromLines || b.perReq <= 0) return [b];
    const hi = b.hi;
    const cuts = monotone(fine)
      .map((q) => q.bytes / LINE)
      .filter((x) => x > b.lo && x < hi);
    const edges = [b.lo, ...cuts, hi];
    const m = edges.map((x) => curveAt(fine, x * LINE));
    const fell = m[0] - m[m.length - 1];
    if (!cuts.length || !(fell > 1e-9)) return [b];
    const out: ReuseBin[] = [];
    edges.slice(1).forEach((hi, k) => {
      const perReq = ((m[k] - m[k + 1]) / fell) * b.perReq;
      const last = out[out.length - 1];
      if (last && last.perReq + perReq <= allowed(m[k + 1]))
        out[out.length - 1] = { ...last, hi, perReq: last.perReq + perReq };
      else out.push({ lo: edges[k], hi, perReq });
    });
    return out;
  });
}
