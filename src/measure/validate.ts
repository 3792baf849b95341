import { resolve } from 'node:path';
import {
  INSN_CLASSES,
  COMPARISON_SCHEMA_VERSION, MEASUREMENT_SCHEMA_VERSION, TwinError,
  type Comparison, type ComparisonRow, type LoadPoint, type Measurement, type Platform, type Workload,
} from '../model/index.js';
import { launchTarget, type LaunchSpec, type RunningTarget } from '../profile/target.js';
import { observe, SETTLE_S, type Observation } from '../profile/observe.js';
import { median } from '../util/stats.js';
import { measureCpu, measureMix, defaultPlatform } from '../profile/valgrind.js';

/** How to start a built clone, as a target like any other. */
export function cloneLaunchSpec(binary: string, w: Workload): LaunchSpec {
  return { command: `'${resolve(binary)}' --port {port} --dir {run}`, dir: '.', templates: [], files: [], startTimeoutS: w.startTimeout };
}

function byName(o: Observation, sent: number): Record<string, number> {
  const m: Record<string, number> = {};
  for (const t of o.trace?.byThread.values() ?? []) for (const [n, c] of t.calls) m[n] = (m[n] ?? 0) + c;
  return Object.fromEntries(Object.entries(m).sort((a, b) => b[1] - a[1]).map(([n, c]) => [n, Math.round((c / sent) * 1e4) / 1e4]));
}

export function loadPoint(o: Observation, rate: number): LoadPoint {
  const sent = Math.max(1, o.load.sent);
  const calls = o.trace ? [...o.trace.byThread.values()].reduce((a, t) => a + [...t.calls.values()].reduce((x, y) => x + y, 0), 0) : null;
  return {
    targetRps: rate,
    throughputRps: o.load.achieved_rps,
    requests: o.load.requests,
    sent: o.load.sent,
    errors: o.load.errors,
    latency: o.load.latency_us,
    cpuUsPerReq: o.cpuNs / 1000 / sent,
    netBytesPerReq: (o.load.bytes.sent + o.load.bytes.received) / Math.max(1, o.load.requests),
    syscallsPerReq: calls === null ? null : calls / sent,
    syscallsByName: byName(o, sent),
    threads: o.threads,
  };
}

export interface ValidateOptions {
  /** Simulated platforms for the Valgrind rows (default: skylake-sp). */
  platforms?: Platform[];
  progress?: (msg: string) => void;
  /** Skip the Valgrind runs (no CPU counter rows). */
  noCpu?: boolean;
}

/** The rounds at least of the lowest load, whose CPU time per request is the one compared.
 *  Half of memcached's CPU there is its LRU thread's, waking every 1.7 ms; nginx's two workers
 *  split each round's connections anew (one round 22.0 and 20.9 µs a request, the next 46.6
 *  and 8.7). Clone/original ratios moved from 0.69 to 1.15 from round to round: a median of
 *  five was not yet steady. Untraced rounds cost 6 s where traced ones cost 10. */
export const LOWEST_LOAD_ROUNDS = 9;

/** Seconds a traced round costs beyond its load: bpftrace's start and stop (about 4.2 s a
 *  round in validation on these 2 cores). */
const TRACED_ROUND_S = 5;
/** Seconds an untraced round costs beyond its load (twin-load's start and report). */
const UNTRACED_ROUND_S = 0.5;

/** About how long `validate` takes: each load point's rounds on both sides (the first traced,
 *  after the settling run), then each side's Valgrind pairs (two per platform, and the mix's)
 *  at `pairS` seconds a pair (two runs at a time, as profiling ran them). */
export function validationSeconds(w: Workload, platforms: number, pairS: number): number {
  const loads = [...w.loads].sort((a, b) => a - b);
  const round = 1 + w.duration;
  const timed = loads.reduce((s, rate) => {
    const n = rate === loads[0] ? Math.max(w.rounds, LOWEST_LOAD_ROUNDS) : w.rounds;
    return s + 2 * (SETTLE_S + round + TRACED_ROUND_S + (n - 1) * (round + UNTRACED_ROUND_S));
  }, 0);
  return timed + 2 * (2 * platforms + 1) * pairS;
}

/** Original and clone in the same run: both started, then each load point driven on one and
 *  then the other, under the same twin-load settings; then both under Valgrind. */
export async function validate(w: Workload, name: string, original: LaunchSpec, clone: LaunchSpec, opts: ValidateOptions = {}): Promise<{ comparison: Comparison; measurements: Measurement[] }> {
  const say = opts.progress ?? (() => {});
  const platforms = opts.platforms?.length ? opts.platforms : [defaultPlatform()];
  const loads = [...w.loads].sort((a, b) => a - b);
  const targets: { who: 'original' | 'clone'; target: RunningTarget }[] = [];
  const points: Record<'original' | 'clone', LoadPoint[]> = { original: [], clone: [] };
  try {
    targets.push({ who: 'original', target: await launchTarget(original) });
    targets.push({ who: 'clone', target: await launchTarget(clone) });
    let first = true;
    for (const rate of loads) {
      const rounds: Record<'original' | 'clone', LoadPoint[]> = { original: [], clone: [] };
      const n = rate === loads[0] ? Math.max(w.rounds, LOWEST_LOAD_ROUNDS) : w.rounds;
      for (let round = 0; round < n; round++) {
        for (const { who, target } of targets) {
          say(`${who} at ${rate} requests/s (round ${round + 1} of ${n})`);
          // The first round is traced, for the system calls; the others are not, for the
          // timed figures (the tracer's probes run on the target's CPU time).
          const o = await observe(target, w, rate, { trace: round === 0, preload: first, settleS: round === 0 ? SETTLE_S : 0 });
          rounds[who].push(loadPoint(o, rate));
        }
        first = false;
      }
      for (const who of ['original', 'clone'] as const) points[who].push(mergeRounds(rounds[who]));
      const ratio = pairedRatio(rounds.original, rounds.clone);
      if (ratio !== null) points.clone[points.clone.length - 1].cpuRatio = ratio;
    }
  } finally {
    for (const { target } of targets) await target.stop();
  }
  const cpu: Record<'original' | 'clone', Measurement['cpu']> = { original: [], clone: [] };
  const mix: Record<'original' | 'clone', Measurement['mix']> = { original: null, clone: null };
  if (!opts.noCpu) {
    for (const [who, spec] of [['original', original], ['clone', clone]] as const) {
      say(`${who} under callgrind: the instruction mix`);
      mix[who] = await measureMix(spec, w);
    }
    for (const platform of platforms) {
      for (const [who, spec] of [['original', original], ['clone', clone]] as const) {
        say(`${who} under Valgrind (${platform.name}: L2 and LLC runs)`);
        cpu[who].push(await measureCpu(spec, w, platform, true));
      }
    }
  }
  const measurements: Measurement[] = (['original', 'clone'] as const).map((who) => ({
    schemaVersion: MEASUREMENT_SCHEMA_VERSION,
    kind: 'twin-measurement',
    target: who,
    points: points[who],
    cpu: cpu[who],
    mix: mix[who],
  }));
  return { comparison: compare(name, platforms.map((p) => p.name).join(','), measurements[0], measurements[1]), measurements };
}

/** Whether a round ran without the tracer (it has no system call counts). */
const untraced = (p: LoadPoint) => p.syscallsPerReq === null;

/** One load point from several rounds: the timed figures are medians over the untraced
 *  rounds (over all, if every round was traced), the system calls come from the traced
 *  rounds, and counts are summed. */
export function mergeRounds(ps: LoadPoint[]): LoadPoint {
  if (ps.length === 1) return ps[0];
  const timed = ps.some(untraced) ? ps.filter(untraced) : ps;
  const traced = ps.filter((p) => !untraced(p));
  const med = (f: (p: LoadPoint) => number) => median(timed.map(f));
  const sum = (xs: LoadPoint[], f: (p: LoadPoint) => number) => xs.reduce((a, p) => a + f(p), 0);
  const errors: Record<string, number> = {};
  for (const p of ps) for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
  // Per request over the traced rounds, each weighted by the requests it sent.
  const tracedSent = sum(traced, (p) => p.sent);
  const perReq = (f: (p: LoadPoint) => number) => (tracedSent > 0 ? sum(traced, (p) => f(p) * p.sent) / tracedSent : 0);
  const names = new Set(traced.flatMap((p) => Object.keys(p.syscallsByName)));
  const requests = sum(ps, (p) => p.requests);
  return {
    targetRps: ps[0].targetRps,
    throughputRps: med((p) => p.throughputRps),
    requests,
    sent: sum(ps, (p) => p.sent),
    errors,
    latency: {
      mean: med((p) => p.latency.mean), p50: med((p) => p.latency.p50), p90: med((p) => p.latency.p90),
      p99: med((p) => p.latency.p99), p999: med((p) => p.latency.p999), max: Math.max(...timed.map((p) => p.latency.max)),
    },
    cpuUsPerReq: med((p) => p.cpuUsPerReq),
    netBytesPerReq: sum(ps, (p) => p.netBytesPerReq * p.requests) / Math.max(1, requests),
    syscallsPerReq: traced.length ? perReq((p) => p.syscallsPerReq!) : null,
    syscallsByName: Object.fromEntries([...names].map((n) => [n, Math.round(perReq((p) => p.syscallsByName[n] ?? 0) * 1e4) / 1e4])),
    threads: Math.round(med((p) => p.threads)),
  };
}

/** The median of the clone's CPU time per request over the original's, round by round,
 *  over the rounds whose timed figures count (the untraced ones, or all if every round was
 *  traced); null without such a pair. */
export function pairedRatio(original: LoadPoint[], clone: LoadPoint[]): number | null {
  const all = !original.some(untraced);
  const ratios = original.flatMap((o, i) => {
    const c = clone[i];
    return c && (all || (untraced(o) && untraced(c))) && o.cpuUsPerReq > 0 && c.cpuUsPerReq > 0 ? [c.cpuUsPerReq / o.cpuUsPerReq] : [];
  });
  return ratios.length ? median(ratios) : null;
}

/** The side-by-side rows of two measurements. */
export function compare(target: string, platform: string, o: Measurement, c: Measurement): Comparison {
  const rows: ComparisonRow[] = [];
  o.points.forEach((po, i) => {
    const pc = c.points[i];
    if (!pc) throw new TwinError('original and clone were measured at different load points');
    const load = po.targetRps;
    const add = (metric: string, f: (p: LoadPoint) => number | null) => rows.push({ metric, load, original: f(po), clone: f(pc) });
    add('throughput_rps', (p) => p.throughputRps);
    add('latency.p50_us', (p) => p.latency.p50);
    add('latency.p99_us', (p) => p.latency.p99);
    add('cpu.us_per_req', (p) => p.cpuUsPerReq);
    // The clone's CPU time against the original's in the same rounds: the original as 1.
    if (pc.cpuRatio !== undefined) rows.push({ metric: 'cpu.paired_ratio', load, original: 1, clone: pc.cpuRatio });
    add('net.bytes_per_req', (p) => p.netBytesPerReq);
    add('syscalls.per_req', (p) => p.syscallsPerReq);
    add('threads.count', (p) => p.threads);
    add('errors.count', (p) => Object.values(p.errors).reduce((a, b) => a + b, 0));
  });
  // Instructions per request and branch mispredictions per 1,000: the medians of all of a
  // side's Valgrind pairs. The simulated caches change neither what runs nor the simulated
  // branch predictor, while a server's timed background work (memcached's LRU maintainer:
  // about two thirds of its instructions at Valgrind's pace) moves each pair's figures by a
  // few percent. Every platform's row shows the pooled figures. The mix's callgrind pair is
  // not among them: callgrind slows a server more, and its work per request shifts (redis:
  // 1.7% fewer instructions than in cachegrind's pairs).
  const pairs = (m: Measurement): Measurement['cpu'][number]['pairs'] => m.cpu.flatMap((x) => (x.pairs.length ? x.pairs : [{ insnsPerReq: x.insnsPerReq, branchMpki: x.branchMpki }]));
  const pooled = (m: Measurement) => ({
    insns: pairs(m).length ? median(pairs(m).map((x) => x.insnsPerReq)) : (m.mix?.insnsPerReq ?? 0),
    branch: median(pairs(m).map((x) => x.branchMpki)),
  });
  const pool = { o: pooled(o), c: pooled(c) };
  // A cache's misses per 1,000 instructions: the median of all of a side's pairs that simulated
  // that cache, whichever platform they were run for (skylake-sp and haswell-ep have the same
  // L1s; an L1 is simulated in both of a platform's pairs; graviton2's LLC is skylake-sp's),
  // else the platform's own figure.
  type Cache = 'I1' | 'D1' | 'LL';
  const cacheMpki = (m: Measurement, level: Cache, geometry: string | undefined, own: number | null): number | null => {
    const xs = pairs(m).flatMap((x) => (geometry && x.caches?.[level] === geometry && x[`${level}Mpki`] !== undefined ? [x[`${level}Mpki`]!] : []));
    return xs.length ? median(xs) : own;
  };
  o.cpu.forEach((oc, i) => {
    const cc = c.cpu[i];
    if (!cc) return;
    type Cpu = Measurement['cpu'][number];
    const add = (metric: string, f: (m: Cpu) => number | null) => rows.push({ metric, load: null, original: f(oc), clone: f(cc) });
    if (i === 0) {
      // The first platform's rates, beside the foundation's rows.
      rows.push({ metric: 'insns.per_req', load: null, original: pool.o.insns, clone: pool.c.insns });
      add('I1.miss_rate', (m) => m.I1MissRate);
      add('D1.miss_rate', (m) => m.D1MissRate);
      add('LL.miss_rate', (m) => m.LLMissRate);
      add('branch.mispredict_rate', (m) => m.branchMispredictRate);
    }
    const p = `sim.${oc.platform}`;
    // This platform's caches, as its own pairs simulated them (the LLC pair, then the L2 pair).
    const [llc, l2] = oc.pairs;
    const pooledRow = (metric: string, level: Cache, geometry: string | undefined, f: (m: Cpu) => number | null) =>
      rows.push({ metric, load: null, original: cacheMpki(o, level, geometry, f(oc)), clone: cacheMpki(c, level, geometry, f(cc)) });
    pooledRow(`${p}.I1.mpki`, 'I1', llc?.caches?.I1, (m) => m.I1Mpki);
    pooledRow(`${p}.D1.mpki`, 'D1', llc?.caches?.D1, (m) => m.D1Mpki);
    pooledRow(`${p}.L2.mpki`, 'LL', l2?.caches?.LL, (m) => m.L2Mpki);
    pooledRow(`${p}.LLC.mpki`, 'LL', llc?.caches?.LL, (m) => m.LLCMpki);
    rows.push({ metric: `${p}.branch.mpki`, load: null, original: pool.o.branch, clone: pool.c.branch });
    rows.push({ metric: `${p}.insns.per_req`, load: null, original: pool.o.insns, clone: pool.c.insns });
  });
  if (o.mix && c.mix) {
    // Shares of the dynamic instructions, class by class (the error column is relative; the
    // fidelity bar for these is in percentage points).
    for (const k of INSN_CLASSES) rows.push({ metric: `mix.${k}.share`, load: null, original: o.mix.shares[k], clone: c.mix.shares[k] });
  }
  return { schemaVersion: COMPARISON_SCHEMA_VERSION, kind: 'twin-comparison', target, platform, rows };
}
