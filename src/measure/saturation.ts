import type { Workload } from '../model/index.js';
import { runLoad, totalErrors } from '../collect/loadgen.js';
import type { RunningTarget } from '../collect/target.js';

/** A rate is served when the target keeps up with it (this share of it achieved), answers
 *  all but this share of its requests, and keeps its p99 under the workload's bound. */
const KEEPS_UP = 0.95;
const ERRORS = 0.001;
/** Steps of the search: doublings or halvings to bracket the saturation rate, then halvings
 *  of the bracket (its last is within 1/2^BISECTIONS of the bracket's width). */
const MAX_STEPS = 8;
const BISECTIONS = 4;
/** Seconds of load per probe, after one of warm-up: short, since a search runs a dozen. */
const PROBE_S = 3;

export interface SaturationProbe {
  rate: number;
  achievedRps: number;
  p99Us: number;
  served: boolean;
}

/** The highest rate the target serves with its p99 under `w.saturationP99` microseconds
 *  (searchSaturation from the workload's highest load), every probe an open-loop run of its
 *  own. */
export async function saturation(
  target: RunningTarget,
  w: Workload,
  seed: number,
  say: (msg: string) => void = () => {},
): Promise<{ rps: number; probes: SaturationProbe[] }> {
  const probes: SaturationProbe[] = [];
  const rps = await searchSaturation(Math.max(...w.loads), async (rate) => {
    const r = await runLoad(w, target.port, { rate, duration: PROBE_S, warmup: 1, seed });
    const served =
      r.achieved_rps >= KEEPS_UP * rate &&
      totalErrors(r) <= ERRORS * Math.max(1, r.sent) &&
      r.latency_us.p99 <= w.saturationP99;
    probes.push({ rate, achievedRps: r.achieved_rps, p99Us: r.latency_us.p99, served });
    say(
      `${rate.toFixed(0)} requests/s: p99 ${r.latency_us.p99.toFixed(0)} us, ${served ? 'served' : 'not served'}`,
    );
    return served;
  });
  return { rps, probes };
}

/** The highest rate `served` says yes to: from `start`, doubled until a rate is not served (or
 *  halved until one is), then the bracket halved BISECTIONS times. 0 where no rate down to a
 *  2^MAX_STEPS-th of `start` is served; 2^MAX_STEPS times `start` where that is. */
export async function searchSaturation(
  start: number,
  served: (rate: number) => Promise<boolean>,
): Promise<number> {
  let lo = 0;
  let hi = 0;
  if (await served(start)) {
    lo = start;
    for (let k = 0; k < MAX_STEPS && hi === 0; k++) {
      const r = lo * 2;
      if (await served(r)) lo = r;
      else hi = r;
    }
    if (hi === 0) return lo;
  } else {
    hi = start;
    for (let k = 0; k < MAX_STEPS && lo === 0; k++) {
      const r = hi / 2;
      if (await served(r)) lo = r;
      else hi = r;
    }
    if (lo === 0) return 0;
  }
  for (let k = 0; k < BISECTIONS; k++) {
    const mid = (lo + hi) / 2;
    if (await served(mid)) lo = mid;
    else hi = mid;
  }
  return Math.round(lo);
}
