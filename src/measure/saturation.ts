import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { SaturationProbe, Workload } from '../model/index.js';
import { cpuNs } from '../collect/proc.js';
import { runLoad, totalErrors } from '../collect/loadgen.js';
import { transactionKinds } from '../collect/pgbench.js';
import type { RunningTarget } from '../collect/target.js';

/** A rate is served when the target keeps up with it (this share of it achieved, or less by
 *  the arrivals' own chance: keepsUp), answers all but this share of its requests, and keeps
 *  its p99 under the workload's bound. */
const KEEPS_UP = 0.95;
const ERRORS = 0.001;

/** The share of a rate a probe must achieve to have kept up: KEEPS_UP, or less where `arrivals`
 *  Poisson arrivals (a driver's transactions) fall short of it by chance: three standard
 *  deviations, 1/sqrt(n) each. pgbench's 3 s at 2,380 statements a second is 1,020
 *  transactions of 7, whose count falls 5% short once in 20 probes: PostgreSQL's came out not
 *  kept up at 2,380 with its p99 at 2.7 ms, and the search halved down to 1,636. */
export const keepsUp = (arrivals: number) => Math.min(KEEPS_UP, 1 - 3 / Math.sqrt(Math.max(1, arrivals)));
/** Steps of the search: doublings or halvings to bracket the saturation rate, then halvings
 *  of the bracket (its last is within 1/2^BISECTIONS of the bracket's width). */
const MAX_STEPS = 8;
const BISECTIONS = 4;
/** Seconds of load per probe, after one of warm-up: short, since a search runs a dozen. */
const PROBE_S = 3;
/** Every rate is probed until most of REPEATS probes agree on it (two alike, else a third):
 *  near its saturation a server's p99 flips between runs, not just moves with the rate, and
 *  one probe sent the search's bracket off by up to a factor of two. Memcached's p99 at 40,000
 *  a second came out 0.76, 30.0 and 3.1 ms in three probes, its clone's 12.4, 29.5 and 7.9 (a
 *  10 ms bound); single-probe searches in three benches gave memcached 42,500, 45,000 and
 *  52,500, its clone 33,750, 38,750 and 80,000. PostgreSQL's came out 7,140, 5,058, 4,760 and 4,165
 *  statements a second in four searches of one probe each. */
export const REPEATS = 3;

/** Before each probe the target rests: the machine's dirty pages written back (`sync`), then
 *  its processes' CPU time watched over windows of REST_MS until one holds under REST_CPU of a
 *  core, at most REST_MAX_MS. A probe past a server's saturation leaves it a backlog and the
 *  disk the pages it dirtied, which the next probe met: PostgreSQL's p99 at one rate moved
 *  5.8-23.0 ms from one probe to the next. */
const REST_MS = 200;
const REST_CPU = 0.05;
const REST_MAX_MS = 5000;

async function rest(target: RunningTarget): Promise<void> {
  await promisify(execFile)('sync');
  const t0 = Date.now();
  let last = cpuNs(target.pids()).ns;
  while (Date.now() - t0 < REST_MAX_MS) {
    await new Promise((r) => setTimeout(r, REST_MS));
    const now = cpuNs(target.pids()).ns;
    if (now - last < REST_CPU * REST_MS * 1e6) return;
    last = now;
  }
}

/** Runs what it is given one at a time, in the order given: two searches that share it take
 *  turns, each probe of one beside one of the other's, so that what drifts on the machine
 *  over minutes (a disk's sync latency) falls on both sides alike. */
export type Turns = <T>(f: () => Promise<T>) => Promise<T>;
export function takeTurns(): Turns {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>) => {
    const run = last.then(f);
    last = run.catch(() => {});
    return run;
  };
}

/** The highest rate the target serves with its p99 under `w.saturationP99` microseconds
 *  (searchSaturation from the workload's highest load), every probe an open-loop run of its
 *  own after a rest, taken in `turns` with another search's where given. In turns without the
 *  rest, a probe run after the other's at a rate it could not serve met that one's aftermath
 *  (PostgreSQL's clone after the original's probes at 4,760 and 7,140 statements a second:
 *  p99 14.9, 11.1 and 10.7 ms at 2,380 and 1,190, then 5.5 and 4.2). One after the other, each
 *  search meets the machine of its own minutes: an original and its clone came out 3,421
 *  against 4,611 and 4,611 against 7,140 (with the rest), 5,058 against 7,140 and 4,760
 *  against 6,545 (without); in turns with the rest, 7,140 against 6,248, 5,653 against 5,653
 *  and 4,463 against 4,016: the two sides drift together. */
export async function saturation(
  target: RunningTarget,
  w: Workload,
  seed: number,
  say: (msg: string) => void = () => {},
  turns: Turns = takeTurns(),
): Promise<{ rps: number; probes: SaturationProbe[] }> {
  const probes: SaturationProbe[] = [];
  const rps = await searchSaturation(Math.max(...w.loads), async (rate) => {
    const tries: SaturationProbe[] = [];
    let served: boolean | null;
    while ((served = decided(tries, w.saturationP99)) === null) {
      const r = await turns(async () => {
        await rest(target);
        return runLoad(w, target.port, { rate, duration: PROBE_S, warmup: 1, seed: seed + tries.length });
      });
      const arrivals = (rate * PROBE_S) / (transactionKinds(w)?.length ?? 1);
      const p: SaturationProbe = {
        rate,
        achievedRps: r.achieved_rps,
        p99Us: r.latency_us.p99,
        keptUp: r.achieved_rps >= keepsUp(arrivals) * rate && totalErrors(r) <= ERRORS * Math.max(1, r.sent),
      };
      tries.push(p);
      probes.push(p);
    }
    const p99s = tries.map((t) => t.p99Us.toFixed(0)).join(', ');
    say(`${rate.toFixed(0)} requests/s: p99 ${p99s} us, ${served ? 'served' : 'not served'}`);
    return served;
  });
  return { rps, probes };
}

/** Whether a probe served its rate: kept up with it, answered, its p99 under the bound. */
export const serves = (p: SaturationProbe, bound: number) => p.keptUp && p.p99Us <= bound;

/** A rate's verdict once most of REPEATS probes agree on it; null while they do not yet. */
export function decided(tries: SaturationProbe[], bound: number): boolean | null {
  const yes = tries.filter((t) => serves(t, bound)).length;
  const most = (REPEATS >> 1) + 1;
  return yes >= most ? true : tries.length - yes >= most ? false : null;
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
