import { L1_CURVE_MAX, L1_SIZES, tableMisses, type CurvePoint, type PortableCpu } from '../model/index.js';
import type { CgTotals } from '../collect/cachegrind.js';
import { SWEEP } from '../collect/sweep.js';
import { MIX_CLASSES } from '../synth/mix.js';
import { monotone } from '../synth/rings.js';

/** The figures the tuner matches, per request: instructions, branch mispredictions, the
 *  misses of every cache size of the two curves, and at each last-level size (L@) the two
 *  summed, as measured: a unified cache's misses, what validation compares (its code and
 *  data apart are shown, not scored; see L1_CURVE_MAX). */
export function tunePoints(c: PortableCpu): Record<string, number> {
  const out: Record<string, number> = { insns: c.insnsPerReq, branch: c.branchMissesPerReq };
  for (const p of monotone(c.dataCurve)) out[`D@${kib(p.bytes)}`] = p.missesPerReq;
  for (const p of monotone(c.codeCurve)) out[`I@${kib(p.bytes)}`] = p.missesPerReq;
  for (const p of c.dataCurve)
    if (p.bytes > L1_CURVE_MAX) out[`L@${kib(p.bytes)}`] = p.missesPerReq + at(c.codeCurve, p.bytes);
  out[`D@${kib(c.conflict.bytes)}/${c.conflict.assoc}w`] = c.conflict.dataMissesPerReq;
  out[`I@${kib(c.conflict.bytes)}/${c.conflict.assoc}w`] = c.conflict.codeMissesPerReq;
  return out;
}

export const at = (c: CurvePoint[] | null, bytes: number) =>
  c?.find((q) => q.bytes === bytes)?.missesPerReq ?? 0;

export const kib = (b: number) => (b >= 1 << 20 ? `${b / (1 << 20)}M` : `${b / 1024}K`);

/** The cache sizes the tuner must match at 8 ways: a server core's 32 KiB L1 and the last
 *  levels (256 KiB and up); a 64 KiB L1 is matched at the profile's low associativity (its
 *  4-way point), where the conflict parts make up what its 8-way point lacks. The sweep's
 *  other sizes (8, 16, 64 and 128 KiB at 8 ways: no server core's L1 or L2) still shape the
 *  rings and the chain, each with a tolerance ten times as wide. */
export function scoredSize(bytes: number): boolean {
  return bytes === 32 << 10 || bytes >= 256 << 10;
}

/** How much more an unscored size's miss count may be off in the solve than a scored one's:
 *  held closer, a point no server core has pulls the solve into moves larger than the
 *  measured columns foresee, and the scored points fall off. */
export const UNSCORED_SLACK = 10;

export const scored = (k: string) => {
  const m = /^([DIL])@(\d+)([KM])(\/\d+w)?$/.exec(k);
  if (!m) return true;
  const bytes = Number(m[2]) * (m[3] === 'M' ? 1 << 20 : 1 << 10);
  // A low-associativity point is an L1's (see scoredSize).
  if (m[4]) return true;
  // At a last level, code and data apart are not one cache's figures: their sum (L@) is.
  return scoredSize(bytes) && (m[1] === 'L' || bytes <= L1_CURVE_MAX);
};

/** Each scored figure's error, signed, in units of what is allowed (misses: `tol` relative or
 *  `absPerReq` misses per request, whichever is larger). */
export function signedErrors(
  want: Record<string, number>,
  got: Record<string, number>,
  tol: number,
  absPerReq: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(want))
    if (k !== 'insns' && got[k] !== undefined && scored(k))
      out[k] = (got[k] - want[k]) / Math.max(tol * want[k], absPerReq);
  return out;
}

/** How far off target the clone is: the largest of its errors, each divided by what is
 *  allowed (instructions: `tol` relative; misses: `mpkiTol` relative or `abs` misses per 1,000
 *  of the original's instructions, whichever is larger), and the figure that sets it (at most
 *  1 is on target); and the root mean square of those errors and of `more` (errors in the same
 *  units that set no score, as l1Errors'), how far off it is as a whole. */
export function offTarget(
  orig: Record<string, number>,
  clone: Record<string, number>,
  tol: number,
  mpkiTol: number,
  abs: number,
  more: Record<string, number> = {},
): { score: number; worst: string; rms: number } {
  let r = { score: -1, worst: 'insns' };
  const errors = Object.entries(toleranceErrors(orig, clone, tol, mpkiTol, abs));
  for (const [k, e] of errors) if (e > r.score) r = { score: e, worst: k };
  return { ...r, rms: rmsOf([...errors.map(([, e]) => e), ...Object.values(more)]) };
}

/** Every L1 geometry a platform may have: 16 to 128 KiB (L1_SIZES), 2 to 16 ways, a power of
 *  two of sets (what random platforms draw from). */
export const L1_GEOMETRIES: { size: number; ways: number }[] = [];
for (let ways = 2; ways <= 16; ways++)
  for (let sets = 1; sets * ways * 64 <= L1_SIZES.hi; sets *= 2)
    if (sets * ways * 64 >= L1_SIZES.lo) L1_GEOMETRIES.push({ size: sets * ways * 64, ways });

/** Each L1's error over every L1 geometry (`I@L1s`, `D@L1s`): the root mean square, over
 *  L1_GEOMETRIES, of the clone's misses' errors read off the reuse tables, in tolerances (as
 *  offTarget's); none where either side has no table. Not a scored figure (the tuner fits no
 *  part to a geometry but the crowd cells): what the keep rule weighs beside them, since a
 *  clone is validated on L1s no one named. */
export function l1Errors(
  orig: PortableCpu,
  clone: PortableCpu,
  mpkiTol: number,
  abs: number,
): Record<string, number> {
  if (!orig.reuse || !clone.reuse) return {};
  const floor = (abs * orig.insnsPerReq) / 1000;
  const side = (s: 'I' | 'D') => {
    const sq = L1_GEOMETRIES.map(({ size, ways }) => {
      const o = Math.max(0, tableMisses(orig.reuse![s], size, ways) ?? 0);
      const c = Math.max(0, tableMisses(clone.reuse![s], size, ways) ?? 0);
      return ((c - o) / Math.max(mpkiTol * o, floor)) ** 2;
    });
    return Math.sqrt(sq.reduce((a, b) => a + b, 0) / sq.length);
  };
  return { 'I@L1s': side('I'), 'D@L1s': side('D') };
}

/** The root mean square of some errors. */
export const rmsOf = (errors: number[]) =>
  Math.sqrt(errors.reduce((a, e) => a + e * e, 0) / Math.max(1, errors.length));

/** Each figure's error, unsigned, in units of what is allowed: the instructions' first. */
export function toleranceErrors(
  orig: Record<string, number>,
  clone: Record<string, number>,
  tol: number,
  mpkiTol: number,
  abs: number,
): Record<string, number> {
  const misses = signedErrors(orig, clone, mpkiTol, (abs * orig.insns) / 1000);
  return {
    insns: Math.abs(clone.insns - orig.insns) / (tol * orig.insns),
    ...Object.fromEntries(Object.entries(misses).map(([k, e]) => [k, Math.abs(e)])),
  };
}

/** The tuned figures some sweep points give (each point's differential totals of `requests`
 *  requests), named as tunePoints names them: the instructions and branch misses (their
 *  mean over the points), each point's L1 misses and its last level's (code and data
 *  summed, as a unified cache's), taken per instruction at the mean instruction count. */
export function pointFigures(totals: CgTotals[], points: number[], requests: number): Record<string, number> {
  const mean = (f: (t: CgTotals) => number) =>
    totals.reduce((s, t) => s + f(t), 0) / Math.max(1, totals.length);
  const insns = mean((t) => t.Ir / requests);
  const per = (t: CgTotals, misses: number) => (t.Ir > 0 ? (misses / t.Ir) * insns : 0);
  const out: Record<string, number> = { insns, branch: mean((t) => per(t, t.Bcm + t.Bim)) };
  totals.forEach((t, i) => {
    const s = SWEEP[points[i]];
    const l1 = `${kib(s.l1)}${s.l1Assoc ? `/${s.l1Assoc}w` : ''}`;
    out[`I@${l1}`] = per(t, t.I1mr);
    out[`D@${l1}`] = per(t, t.D1mr + t.D1mw);
    out[`L@${kib(s.ll)}`] = per(t, t.ILmr + t.DLmr + t.DLmw);
  });
  return out;
}

/** The instruction-mix class furthest from the original's share, in percentage points. */
export function mixGap(o: PortableCpu, m: PortableCpu): { pp: number; cls: string } | null {
  if (!o.mix || !m.mix) return null;
  return MIX_CLASSES.map((c) => ({ pp: 100 * Math.abs(m.mix!.shares[c] - o.mix!.shares[c]), cls: c })).reduce(
    (a, b) => (b.pp > a.pp ? b : a),
  );
}

/** Tuning stops once every figure is within this share of its tolerance (else it goes on,
 *  keeping the best): the original and the clone each move about 1% between runs, which
 *  would carry a figure tuned to the edge past it (see docs/tuner.md, scores and stop
 *  rules). */
export const AIM = 0.7;
