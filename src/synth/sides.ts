import { reuseCurves, type CurvePoint, type PortableCpu } from '../model/index.js';

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
