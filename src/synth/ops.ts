import { l1Points, type AloneCpu, type PortableCpu, type Profile } from '../model/index.js';
import { binsFromCurve, conflictExcess, curveLess, type ReuseBin } from './rings.js';

/** How much of each of the body's parts a request type runs, as multiples of the profiled
 *  mix's mean: a type that misses twice the mean in a reuse bin walks that bin's ring twice as
 *  often. Under the profiled mix the multiples average to one, part by part, so the tuned
 *  rates stand; under another mix the clone's work follows the types it serves. */
export interface OpScale {
  op: string;
  /** One per data reuse bin (the rings'), one per code footprint bin (the segments'). */
  rings: number[];
  segments: number[];
  /** The crowd groups, data's and code's. */
  crowd: number;
  hard: number;
  /** Instructions of body work: the mix loop's multiple is solved from it (bodyPlan). */
  insns: number;
}

/** What a request type alone asks of the body: its work less the skeleton's (measured under
 *  the mix; the skeleton's own per-type difference is its own). */
function bodyParts(a: AloneCpu, s: PortableCpu | null) {
  return {
    insns: Math.max(0, a.insnsPerReq - (s?.insnsPerReq ?? 0)),
    data: binsFromCurve(curveLess(a.dataCurve, s?.dataCurve)).map((b) => b.perReq),
    code: binsFromCurve(curveLess(l1Points(a.codeCurve), s?.codeCurve)).map((b) => b.perReq),
    hard: Math.max(0, a.branchMissesPerReq - (s?.branchMissesPerReq ?? 0)),
    crowd: Math.max(0, conflictExcess(a) - (s ? conflictExcess(s) : 0)),
  };
}

/** Each request type's multiples (none where the profile has one type, or no type measured
 *  alone). A multiple is a type's amount over the mix's share-weighted mean, at most one over
 *  the type's share (all of the part in that type), 1 where no type has any of the part. A
 *  ring of `dataBins` takes the multiple of the curve's bin it lies in (a last-level bin may
 *  be cut in several, see splitBins). */
export function opScales(p: Profile, dataBins: ReuseBin[]): OpScale[] {
  const types = p.requests;
  if (types.length < 2 || types.some((r) => !r.alone)) return [];
  const parts = types.map((r) => bodyParts(r.alone!, p.body.skeleton));
  const shares = types.map((r) => r.share / types.reduce((a, t) => a + t.share, 0));
  const scale = (amount: (x: (typeof parts)[number]) => number) => {
    const mean = parts.reduce((a, x, i) => a + shares[i] * amount(x), 0);
    return parts.map((x, i) => (mean > 0 ? Math.min(amount(x) / mean, 1 / shares[i]) : 1));
  };
  const perBin = (side: 'data' | 'code') => parts[0][side].map((_, b) => scale((x) => x[side][b] ?? 0));
  const [coarse, code] = [perBin('data'), perBin('code')];
  const edges = binsFromCurve(p.body.original.dataCurve).map((b) => b.lo);
  const data = dataBins.map((b) => coarse[Math.max(0, edges.filter((lo) => lo <= b.lo).length - 1)] ?? []);
  const [insns, hard, crowd] = [scale((x) => x.insns), scale((x) => x.hard), scale((x) => x.crowd)];
  return types.map((t, i) => ({
    op: t.op,
    rings: data.map((b) => b[i]),
    segments: code.map((b) => b[i]),
    crowd: crowd[i],
    hard: hard[i],
    insns: insns[i],
  }));
}
