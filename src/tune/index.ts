import type { Platform, Profile, Workload } from '../model/index.js';
import { generateClone } from '../generate/index.js';
import { buildClone } from '../generate/build.js';
import { cloneLaunchSpec } from '../measure/validate.js';
import { measureCpu, defaultPlatform } from '../profile/valgrind.js';
import { bodyInsnsPerReq } from '../synth/body.js';

export interface TuneOptions {
  maxIterations?: number;
  /** Relative error at which tuning stops. */
  tolerance?: number;
  platform?: Platform;
  progress?: (msg: string) => void;
}

/** Feedback on the instruction budget: measure the clone's instructions per request under
 *  Valgrind, move the body's budget by the difference (the skeleton's own instructions are
 *  what is left), regenerate and rebuild, until within tolerance. Returns the tuned profile,
 *  with its history; the clone in `dir` is built from it. */
export async function tune(p: Profile, w: Workload, dir: string, opts: TuneOptions = {}): Promise<Profile> {
  const say = opts.progress ?? (() => {});
  const max = opts.maxIterations ?? 4;
  const tol = opts.tolerance ?? 0.02;
  const target = p.body.cpu.insnsPerReq * p.knobs.insnScale;
  let cur: Profile = structuredClone(p);
  const history = [...cur.tuning];
  for (let it = 0; it < max; it++) {
    const body = bodyInsnsPerReq(cur) / cur.knobs.insnScale;
    generateClone(cur, dir);
    const binary = buildClone(dir);
    const m = await measureCpu(cloneLaunchSpec(binary, w), w, opts.platform ?? defaultPlatform());
    const error = (m.insnsPerReq - target) / target;
    history.push({ iteration: history.length, bodyInsnsPerReq: body, cloneInsnsPerReq: m.insnsPerReq, targetInsnsPerReq: target, error });
    say(`tuning ${it + 1}: body ${Math.round(body)} insns/req, clone ${Math.round(m.insnsPerReq)} vs ${Math.round(target)} (${(error * 100).toFixed(1)}%)`);
    if (Math.abs(error) <= tol) break;
    const next = Math.max(0, body + (target - m.insnsPerReq) / cur.knobs.insnScale);
    cur = { ...cur, knobs: { ...cur.knobs, bodyInsnsPerReq: next } };
    if (it === max - 1) {
      generateClone(cur, dir);
      buildClone(dir);
    }
  }
  cur = { ...cur, tuning: history };
  generateClone(cur, dir); // the profile beside the sources carries its history
  buildClone(dir);
  return cur;
}
