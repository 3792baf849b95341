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
  /** Absolute error, in misses per 1,000 instructions, at which a small metric is on target. */
  mpkiTolerance?: number;
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

/** Whether the clone is on target: instructions within `tol`, each miss rate within `tol`
 *  or within `abs` misses per 1,000 instructions. */
export function onTarget(orig: CpuCounters, clone: CpuCounters, tol: number, abs: number): boolean {
  if (Math.abs(clone.insnsPerReq - orig.insnsPerReq) > tol * orig.insnsPerReq) return false;
  const o = mpkiOf(orig);
  const c = mpkiOf(clone);
  return Object.keys(o).every((k) => {
    const a = o[k] ?? 0;
    const b = c[k] ?? 0;
    return Math.abs(b - a) <= Math.max(tol * a, abs);
  });
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
  const max = opts.maxIterations ?? 8;
  const tol = opts.tolerance ?? 0.02;
  const abs = opts.mpkiTolerance ?? 0.05;
  const platform = opts.platform ?? defaultPlatform();
  const scale = p.knobs.insnScale;
  const original = p.body.cpu;
  const want = perRequest(original);
  want.insns *= scale;
  let cur: Profile = structuredClone(p);
  const history = [...cur.tuning];
  for (let it = 0; it < max; it++) {
    const plan = bodyPlan(cur);
    generateClone(cur, dir);
    const binary = buildClone(dir);
    const m = await measureCpu(cloneLaunchSpec(binary, w), w, platform, true);
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
    say(`tuning ${it + 1}: ${Math.round(m.insnsPerReq)} vs ${Math.round(want.insns)} insns/req (${(error * 100).toFixed(1)}%), mpki I1 ${mc.I1?.toFixed(2)}/${mo.I1?.toFixed(2)} D1 ${mc.D1?.toFixed(2)}/${mo.D1?.toFixed(2)} L2 ${mc.L2?.toFixed(2)}/${mo.L2?.toFixed(2)} branch ${mc.branch?.toFixed(2)}/${mo.branch?.toFixed(2)}`);
    if (onTarget({ ...original, insnsPerReq: want.insns }, m, tol, abs)) break;
    const d = (k: Metric) => want[k] - got[k];
    const llc = Math.max(0, plan.ringLoadsPerReq.llc + d('LLC'));
    const dl = llc - plan.ringLoadsPerReq.llc;
    const l2 = Math.max(0, plan.ringLoadsPerReq.l2 + d('L2') - dl);
    const d2 = l2 - plan.ringLoadsPerReq.l2;
    const d1 = Math.max(0, plan.ringLoadsPerReq.d1 + d('D1') - d2 - dl);
    cur = {
      ...cur,
      knobs: {
        ...cur.knobs,
        bodyInsnsPerReq: Math.max(0, plan.insnsPerReq + d('insns')) / scale,
        codeBlocksPerReq: Math.max(0, plan.codeBlocksPerReq + d('I1')),
        hardBranchesPerReq: Math.max(0, plan.hardBranchesPerReq + d('branch') / 0.5),
        ringLoadsPerReq: { d1, l2, llc },
      },
    };
  }
  cur = { ...cur, tuning: history };
  generateClone(cur, dir); // the profile beside the sources carries its history
  buildClone(dir);
  return cur;
}
