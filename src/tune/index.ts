import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CurvePoint, PortableCpu, Profile, Workload } from '../model/index.js';
import { generateClone } from '../generate/index.js';
import { buildClone } from '../generate/build.js';
import { cloneLaunchSpec } from '../measure/validate.js';
import { measurePortable } from '../profile/valgrind.js';
import { bodyPlan, bodyTarget, hardMissRate, HARD_P } from '../synth/body.js';
import { monotone } from '../synth/rings.js';

export interface TuneOptions {
  maxIterations?: number;
  /** Relative error at which instructions per request are on target. */
  tolerance?: number;
  /** Relative error at which a miss count is on target. */
  mpkiTolerance?: number;
  /** Absolute error, in misses per 1,000 instructions, at which a small miss count is on target. */
  mpkiAbsolute?: number;
  progress?: (msg: string) => void;
}

/** A profile whose body is empty: the clone's skeleton alone. */
export function skeletonOnly(p: Profile): Profile {
  const t = bodyTarget(p);
  return {
    ...p,
    knobs: { ...p.knobs, bodyInsnsPerReq: 0, dataLoads: t.dataBins.map(() => 0), codeBlocks: t.codeBins.map(() => 0), conflictLoads: 0, codeConflictBlocks: 0, hardBranchesPerReq: 0 },
    tuning: [],
  };
}

/** Measures what the clone's own skeleton executes under the workload (a clone with an empty
 *  body, built in a scratch folder) and records it in the profile: the body supplies the rest. */
export async function withSkeleton(p: Profile, w: Workload, say: (msg: string) => void = () => {}): Promise<Profile> {
  const dir = mkdtempSync(join(tmpdir(), 'twin-skeleton-'));
  try {
    generateClone(skeletonOnly(p), join(dir, 'clone'));
    const binary = buildClone(join(dir, 'clone'));
    say('measuring the clone\'s skeleton alone under Valgrind (the same sweep)');
    const skeleton = await measurePortable(cloneLaunchSpec(binary, w), w, { mix: true });
    return { ...p, body: { ...p.body, skeleton } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures the tuner matches, per request: instructions, branch mispredictions, and the
 *  misses of every cache size of the two curves. */
export function tunePoints(c: PortableCpu): Record<string, number> {
  const out: Record<string, number> = { insns: c.insnsPerReq, branch: c.branchMissesPerReq };
  for (const p of monotone(c.dataCurve)) out[`D@${kib(p.bytes)}`] = p.missesPerReq;
  for (const p of monotone(c.codeCurve)) out[`I@${kib(p.bytes)}`] = p.missesPerReq;
  out[`D@${kib(c.conflict.bytes)}/${c.conflict.assoc}w`] = c.conflict.dataMissesPerReq;
  out[`I@${kib(c.conflict.bytes)}/${c.conflict.assoc}w`] = c.conflict.codeMissesPerReq;
  return out;
}

const kib = (b: number) => (b >= 1 << 20 ? `${b / (1 << 20)}M` : `${b / 1024}K`);

/** The smallest cache the tuner must match: no server core has a smaller L1. Smaller sizes
 *  still shape the rings and the chain. */
export const SMALLEST_SCORED = 32 << 10;

const scored = (k: string) => {
  const m = /@(\d+)([KM])/.exec(k);
  return !m || Number(m[1]) * (m[2] === 'M' ? 1 << 20 : 1 << 10) >= SMALLEST_SCORED;
};

/** How far off target the clone is: the largest of its errors, each divided by what is
 *  allowed (instructions: `tol` relative; misses: `mpkiTol` relative or `abs` misses per 1,000
 *  of the original's instructions, whichever is larger), and the figure that sets it. At most
 *  1 is on target. */
export function offTarget(orig: Record<string, number>, clone: Record<string, number>, tol: number, mpkiTol: number, abs: number): { score: number; worst: string } {
  let r = { score: Math.abs(clone.insns - orig.insns) / (tol * orig.insns), worst: 'insns' };
  const absPerReq = (abs * orig.insns) / 1000;
  for (const k of Object.keys(orig)) {
    if (k === 'insns' || clone[k] === undefined || !scored(k)) continue;
    const e = Math.abs(clone[k] - orig[k]) / Math.max(mpkiTol * orig[k], absPerReq);
    if (e > r.score) r = { score: e, worst: k };
  }
  return r;
}

/** New loads per bin from the errors at the curve's points: a bin's loads sit between two
 *  sizes, missing the smaller and hitting the larger, so the misses at point k move with the
 *  loads of bins k and above; the move at each point is spread back onto the bins. */
function moveBins(loads: number[], want: CurvePoint[], got: CurvePoint[], gain: number): number[] {
  const w = monotone(want);
  const g = monotone(got);
  const delta = w.map((p, k) => gain * (p.missesPerReq - (g[k]?.missesPerReq ?? 0)));
  return loads.map((l, k) => Math.max(0, l + delta[k] - (k + 1 < delta.length ? delta[k + 1] : 0)));
}

/** Feedback on the body's knobs: measure the clone's sweep under Valgrind, and move each knob
 *  by the per-request difference it controls: the instruction budget by the instructions
 *  missing, each data ring's and code segment's loads by the misses missing at the sizes
 *  around its bin, the random branches by twice the mispredictions missing. Regenerate,
 *  rebuild, repeat until on target or out of iterations; keep the best; the history goes into
 *  the profile. */
export async function tune(p: Profile, w: Workload, dir: string, opts: TuneOptions = {}): Promise<Profile> {
  const say = opts.progress ?? (() => {});
  const max = opts.maxIterations ?? 8;
  const tol = opts.tolerance ?? 0.02;
  const mpkiTol = opts.mpkiTolerance ?? 0.05;
  const abs = opts.mpkiAbsolute ?? 0.05;
  // Moves are damped, more so after the first two: Valgrind's counts of a multi-threaded
  // server vary from run to run by a few percent, and full moves chase that noise.
  const gainAt = (it: number) => (it < 2 ? 0.8 : 0.5);
  let cur: Profile = p.body.skeleton ? structuredClone(p) : await withSkeleton(structuredClone(p), w, say);
  const scale = cur.knobs.insnScale;
  const original = cur.body.original;
  const want = tunePoints(original);
  want.insns *= scale;
  const history = [...cur.tuning];
  const conflictKey = `D@${kib(original.conflict.bytes)}/${original.conflict.assoc}w`;
  const codeConflictKey = `I@${kib(original.conflict.bytes)}/${original.conflict.assoc}w`;
  let best = { score: Infinity, knobs: cur.knobs };
  for (let it = 0; it < max; it++) {
    const plan = bodyPlan(cur);
    generateClone(cur, dir);
    const binary = buildClone(dir);
    const m = await measurePortable(cloneLaunchSpec(binary, w), w);
    const got = tunePoints(m);
    const error = (m.insnsPerReq - want.insns) / want.insns;
    history.push({
      iteration: history.length,
      bodyInsnsPerReq: plan.insnsPerReq / scale,
      cloneInsnsPerReq: m.insnsPerReq,
      targetInsnsPerReq: want.insns,
      error,
      points: Object.fromEntries(Object.keys(want).map((k) => [k, { clone: got[k] ?? 0, original: want[k] }])),
    });
    const { score, worst } = offTarget(want, got, tol, mpkiTol, abs);
    say(`tuning ${it + 1}: ${Math.round(m.insnsPerReq)} vs ${Math.round(want.insns)} insns/req (${(error * 100).toFixed(1)}%), ${score <= 1 ? 'on target' : `off target x${score.toFixed(2)}, by ${worst}: ${got[worst]?.toFixed(2)} vs ${want[worst].toFixed(2)} per request`}`);
    if (score < best.score) best = { score, knobs: cur.knobs };
    if (score <= 1) break;
    const t = bodyTarget(cur);
    const gain = gainAt(it);
    cur = {
      ...cur,
      knobs: {
        ...cur.knobs,
        bodyInsnsPerReq: Math.max(0, plan.insnsPerReq + (want.insns - got.insns)) / scale,
        dataLoads: moveBins(cur.knobs.dataLoads ?? t.dataBins.map((b) => b.perReq), original.dataCurve, m.dataCurve, gain),
        codeBlocks: moveBins(cur.knobs.codeBlocks ?? t.codeBins.map((b) => b.perReq), original.codeCurve, m.codeCurve, gain),
        conflictLoads: Math.max(0, plan.conflict.loadsPerReq + gain * (want[conflictKey] - got[conflictKey])),
        codeConflictBlocks: Math.max(0, plan.codeConflict.loadsPerReq + gain * (want[codeConflictKey] - got[codeConflictKey])),
        hardBranchesPerReq: Math.max(0, plan.hardBranchesPerReq + (gain * (want.branch - got.branch)) / hardMissRate(HARD_P)),
      },
    };
  }
  // The best measured knobs, whether or not the last iteration improved on them.
  cur = { ...cur, knobs: best.knobs, tuning: history };
  generateClone(cur, dir); // the profile beside the sources carries its history
  buildClone(dir);
  return cur;
}
