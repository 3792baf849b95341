import type { CpuCounters, Platform, Profile, Workload } from '../model/index.js';
import { generateClone } from '../generate/index.js';
import { buildClone } from '../generate/build.js';
import { cloneLaunchSpec } from '../measure/validate.js';
import { measureCpu, defaultPlatform } from '../profile/valgrind.js';
import { bodyPlan } from '../synth/body.js';

export interface TuneOptions {
  maxIterations?: number;
  /** Relative error at which a metric is on target. */
  tolerance?: number;
  /** Relative error at which a miss rate is on target. */
  mpkiTolerance?: number;
  /** Absolute error, in misses per 1,000 instructions, at which a small miss rate is on target. */
  mpkiAbsolute?: number;
  platform?: Platform;
  progress?: (msg: string) => void;
}

type Metric = 'insns' | 'I1' | 'D1' | 'L2' | 'LLC' | 'branch';

/** Per-request figures of a measurement: instructions and misses per request. */
function perRequest(c: CpuCounters): Record<Metric, number> {
  const r = (mpki: number | null) => ((mpki ?? 0) * c.insnsPerReq) / 1000;
  return { insns: c.insnsPerReq, I1: r(c.I1Mpki), D1: r(c.D1Mpki), L2: r(c.L2Mpki), LLC: r(c.LLCMpki), branch: r(c.branchMpki) };
}

function mpkiOf(c: CpuCounters): Record<string, number | null> {
  return { I1: c.I1Mpki, D1: c.D1Mpki, L2: c.L2Mpki, LLC: c.LLCMpki, branch: c.branchMpki };
}

/** How far off target the clone is: the largest of its errors, each divided by what is
 *  allowed (instructions: `tol` relative; miss rates: `mpkiTol` relative or `abs` misses per
 *  1,000 instructions, whichever is larger). At most 1 is on target. */
export function offTarget(orig: CpuCounters, clone: CpuCounters, tol: number, mpkiTol: number, abs: number): number {
  let worst = Math.abs(clone.insnsPerReq - orig.insnsPerReq) / (tol * orig.insnsPerReq);
  const o = mpkiOf(orig);
  const c = mpkiOf(clone);
  for (const k of Object.keys(o)) {
    if (o[k] === null || c[k] === null) continue;
    worst = Math.max(worst, Math.abs(c[k]! - o[k]!) / Math.max(mpkiTol * o[k]!, abs));
  }
  return worst;
}

/** Feedback on the body's knobs: measure the clone under Valgrind on the profiling
 *  platform, and move each knob by the per-request difference it controls (the skeleton's
 *  own instructions and misses are what is left): the instruction budget by the
 *  instructions missing, code blocks by the I1 misses, random branches by twice the
 *  mispredictions, and the three rings by the D1, L2 and LLC misses (a load of the L2
 *  ring misses D1 and L2; of the LLC ring, all three). Regenerate, rebuild, repeat until on
 *  target or out of iterations; the history goes into the profile. */
export async function tune(p: Profile, w: Workload, dir: string, opts: TuneOptions = {}): Promise<Profile> {
  const say = opts.progress ?? (() => {});
  const max = opts.maxIterations ?? 6;
  const tol = opts.tolerance ?? 0.02;
  const mpkiTol = opts.mpkiTolerance ?? 0.05;
  const abs = opts.mpkiAbsolute ?? 0.05;
  // Moves are damped: Valgrind's counts of a multi-threaded server vary from run to run.
  const gain = 0.8;
  const platform = opts.platform ?? defaultPlatform();
  const scale = p.knobs.insnScale;
  const original = p.body.cpu;
  const want = perRequest(original);
  want.insns *= scale;
  let cur: Profile = structuredClone(p);
  const history = [...cur.tuning];
  // L2 runs only where the original misses its L2 measurably: each is two more Valgrind runs.
  const withL2 = (original.L2Mpki ?? 0) > abs;
  let best = { score: Infinity, knobs: cur.knobs };
  for (let it = 0; it < max; it++) {
    const plan = bodyPlan(cur);
    generateClone(cur, dir);
    const binary = buildClone(dir);
    const m = await measureCpu(cloneLaunchSpec(binary, w), w, platform, withL2);
    const got = perRequest(m);
    const error = (m.insnsPerReq - want.insns) / want.insns;
    const mo = mpkiOf(original);
    const mc = mpkiOf(m);
    history.push({
      iteration: history.length,
      bodyInsnsPerReq: plan.insnsPerReq / scale,
      cloneInsnsPerReq: m.insnsPerReq,
      targetInsnsPerReq: want.insns,
      error,
      mpki: Object.fromEntries(Object.keys(mo).map((k) => [k, { clone: mc[k], original: mo[k] }])),
    });
    const f = (x: number | null) => (x === null ? '-' : x.toFixed(2));
    say(`tuning ${it + 1}: ${Math.round(m.insnsPerReq)} vs ${Math.round(want.insns)} insns/req (${(error * 100).toFixed(1)}%), mpki clone/original: ${['I1', 'D1', 'L2', 'LLC', 'branch'].map((k) => `${k} ${f(mc[k])}/${f(mo[k])}`).join(', ')}`);
    const score = offTarget({ ...original, insnsPerReq: want.insns, L2Mpki: withL2 ? original.L2Mpki : null }, m, tol, mpkiTol, abs);
    if (score < best.score) best = { score, knobs: cur.knobs };
    if (score <= 1) break;
    const d = (k: Metric) => gain * (want[k] - (k === 'L2' && !withL2 ? got.LLC : got[k]));
    const llc = Math.max(0, plan.ringLoadsPerReq.llc + d('LLC'));
    const dl = llc - plan.ringLoadsPerReq.llc;
    const l2 = Math.max(0, plan.ringLoadsPerReq.l2 + d('L2') - dl);
    const d2 = l2 - plan.ringLoadsPerReq.l2;
    const d1 = Math.max(0, plan.ringLoadsPerReq.d1 + d('D1') - d2 - dl);
    cur = {
      ...cur,
      knobs: {
        ...cur.knobs,
        bodyInsnsPerReq: Math.max(0, plan.insnsPerReq + (want.insns - got.insns)) / scale,
        codeBlocksPerReq: Math.max(0, plan.codeBlocksPerReq + d('I1')),
        hardBranchesPerReq: Math.max(0, plan.hardBranchesPerReq + d('branch') / 0.5),
        ringLoadsPerReq: { d1, l2, llc },
      },
    };
  }
  // The best measured knobs, whether or not the last iteration improved on them.
  cur = { ...cur, knobs: best.knobs, tuning: history };
  generateClone(cur, dir); // the profile beside the sources carries its history
  buildClone(dir);
  return cur;
}
