import {
  MEASUREMENT_SCHEMA_VERSION,
  SYNC_CALLS,
  TARGETS,
  type Comparison,
  type LoadPoint,
  type Measurement,
  type Platform,
  type Workload,
} from '../model/index.js';
import { launchTarget, type LaunchSpec, type RunningTarget } from '../collect/target.js';
import { observe, type Observation } from '../collect/observe.js';
import { measurePlatforms, ORIGINAL_PAIRS } from '../collect/cpu.js';
import { PROFILE_SEED } from '../collect/loadgen.js';
import { compare, medianDecided, mergeRounds, pairedRatio, pairedRatios } from './compare.js';
import { verdictOf } from './verdict.js';
import { saturation, takeTurns } from './saturation.js';

function byName(o: Observation, sent: number): Record<string, number> {
  const m: Record<string, number> = {};
  for (const t of o.trace?.byThread.values() ?? []) for (const [n, c] of t.calls) m[n] = (m[n] ?? 0) + c;
  return Object.fromEntries(
    Object.entries(m)
      .sort((a, b) => b[1] - a[1])
      .map(([n, c]) => [n, Math.round((c / sent) * 1e4) / 1e4]),
  );
}

const FILE_READS = new Set(['read', 'pread64', 'readv']);
const FILE_WRITES = new Set(['write', 'pwrite64', 'writev']);

/** Bytes read from and written to regular files a request, and the calls that force them to
 *  the disk (fsync, fdatasync, sync_file_range), from the tracer; null untraced. */
export function diskPerReq(o: Observation, sent: number): LoadPoint['disk'] {
  if (!o.trace) return null;
  const bytes = (calls: Set<string>) =>
    o
      .trace!.io.filter((e) => e.file && e.bytes > 0 && calls.has(e.call))
      .reduce((a, e) => a + e.bytes * e.count, 0);
  const syncs = [...o.trace.byThread.values()].reduce(
    (a, t) => a + SYNC_CALLS.reduce((x, n) => x + (t.calls.get(n) ?? 0), 0),
    0,
  );
  return {
    readBytesPerReq: bytes(FILE_READS) / sent,
    writeBytesPerReq: bytes(FILE_WRITES) / sent,
    syncsPerReq: syncs / sent,
  };
}

export function loadPoint(o: Observation, rate: number): LoadPoint {
  const sent = Math.max(1, o.load.sent);
  const calls = o.trace
    ? [...o.trace.byThread.values()].reduce((a, t) => a + [...t.calls.values()].reduce((x, y) => x + y, 0), 0)
    : null;
  return {
    targetRps: rate,
    throughputRps: o.load.achieved_rps,
    requests: o.load.requests,
    sent: o.load.sent,
    errors: o.load.errors,
    latency: o.load.latency_us,
    cpuUsPerReq: o.cpuNs / 1000 / sent,
    ...(o.sysShare === null ? {} : { cpuSysUsPerReq: (o.sysShare * o.cpuNs) / 1000 / sent }),
    netBytesPerReq: (o.load.bytes.sent + o.load.bytes.received) / Math.max(1, o.load.requests),
    syscallsPerReq: calls === null ? null : calls / sent,
    syscallsByName: byName(o, sent),
    threads: o.threads,
    processes: o.during.length,
    disk: diskPerReq(o, sent),
    ...(o.load.driver
      ? { driver: { tps: o.load.driver.tps, latencyMeanUs: 1000 * o.load.driver.latencyMeanMs } }
      : {}),
  };
}

/** Validation's load seed by default: other requests and keys than those profiling and
 *  tuning sent. */
export const VALIDATION_SEED = 2;

export interface ValidateOptions {
  /** Simulated platforms for the Valgrind rows. */
  platforms: Platform[];
  progress?: (msg: string) => void;
  /** Skip the Valgrind runs (no CPU counter rows). */
  noCpu?: boolean;
  /** The load seed of both sides' runs (default VALIDATION_SEED). */
  seed?: number;
  /** Find each side's saturation throughput besides (saturation.ts). */
  saturation?: boolean;
}

/** The rounds at least of the lowest load, whose CPU time per request is the one compared.
 *  There much of a server's CPU is its timed background threads', and workers split each
 *  round's connections anew, so the clone/original ratio moves widely from round to round
 *  and a median of five is not yet steady. Only the first round is traced, so the rest cost
 *  little beyond their load. The rounds stop early once the median of all of them could no
 *  longer change sides of the paired ratio's bound, whatever the rounds left came out at
 *  (medianDecided): the verdict is the one all the rounds would give. */
export const LOWEST_LOAD_ROUNDS = 9;

/** The rounds at least of every load where latency is judged (with the saturation search): a
 *  p50 is a median over the untraced rounds, and one round's moves by more than its bound.
 *  PostgreSQL's p50 under pgbench ran 1,484-2,187 us over five rounds of 5 s at 700 statements
 *  a second, and its clone's beside it 1,564-2,323. */
export const LATENCY_ROUNDS = 5;

/** Original and clone in the same run: both started, then each load point driven on one and
 *  then the other, under the same twin-load settings; then both under Valgrind. */
export async function validate(
  w: Workload,
  name: string,
  original: LaunchSpec,
  clone: LaunchSpec,
  opts: ValidateOptions,
): Promise<{ comparison: Comparison; measurements: Measurement[] }> {
  const say = opts.progress ?? (() => {});
  const platforms = opts.platforms;
  const seed = opts.seed ?? VALIDATION_SEED;
  const loads = [...w.loads].sort((a, b) => a - b);
  const targets: { who: 'original' | 'clone'; target: RunningTarget }[] = [];
  const points: Record<'original' | 'clone', LoadPoint[]> = { original: [], clone: [] };
  const saturated: Partial<Record<'original' | 'clone', Awaited<ReturnType<typeof saturation>>>> = {};
  try {
    targets.push({ who: 'original', target: await launchTarget(original) });
    targets.push({ who: 'clone', target: await launchTarget(clone) });
    let first = true;
    for (const rate of loads) {
      const rounds: Record<'original' | 'clone', LoadPoint[]> = { original: [], clone: [] };
      const least = opts.saturation ? Math.max(w.rounds, LATENCY_ROUNDS) : w.rounds;
      const n = rate === loads[0] ? Math.max(least, LOWEST_LOAD_ROUNDS) : least;
      for (let round = 0; round < n; round++) {
        for (const { who, target } of targets) {
          say(`${who} at ${rate} requests/s (round ${round + 1} of ${n})`);
          // The first round is traced, for the system calls; the others are not, for the
          // timed figures (the tracer's probes run on the target's CPU time).
          const o = await observe(target, w, rate, {
            trace: round === 0,
            preload: first,
            settle: round === 0,
            seed,
          });
          rounds[who].push(loadPoint(o, rate));
        }
        first = false;
        const ratios = pairedRatios(rounds.original, rounds.clone);
        if (
          round < n - 1 &&
          round + 1 >= least &&
          n > least &&
          medianDecided(ratios, n - 1, TARGETS.pairedRatio)
        ) {
          say(`the paired CPU ratio is decided after ${round + 1} rounds of ${n}`);
          break;
        }
      }
      for (const who of ['original', 'clone'] as const) points[who].push(mergeRounds(rounds[who]));
      const ratio = pairedRatio(rounds.original, rounds.clone);
      if (ratio !== null) points.clone[points.clone.length - 1].cpuRatio = ratio;
    }
    if (opts.saturation) {
      // Both searches at once, their probes in turns (one side's, then the other's).
      say(`original and clone in turns: the highest rate served with p99 under ${w.saturationP99} us`);
      const turns = takeTurns();
      const found = await Promise.all(
        targets.map(({ who, target }) => saturation(target, w, seed, (m) => say(`${who} at ${m}`), turns)),
      );
      targets.forEach(({ who }, i) => (saturated[who] = found[i]));
    }
  } finally {
    for (const { target } of targets) await target.stop();
  }
  const cpu: Record<'original' | 'clone', Measurement['cpu']> = { original: [], clone: [] };
  const mix: Record<'original' | 'clone', Measurement['mix']> = { original: null, clone: null };
  const steps: Record<'original' | 'clone', number | null> = { original: null, clone: null };
  if (!opts.noCpu) {
    say("original and clone under Valgrind: every platform's caches, the branches and the mix (twinreuse)");
    const [o, c] = await measurePlatforms([original, clone], w, platforms, seed, [ORIGINAL_PAIRS, 2]);
    [cpu.original, mix.original, cpu.clone, mix.clone] = [o.counters, o.mix, c.counters, c.mix];
    [steps.original, steps.clone] = [o.loadSteps, c.loadSteps];
  }
  const measurements: Measurement[] = (['original', 'clone'] as const).map((who) => ({
    schemaVersion: MEASUREMENT_SCHEMA_VERSION,
    kind: 'twin-measurement',
    target: who,
    points: points[who],
    cpu: cpu[who],
    mix: mix[who],
    ...(steps[who] !== null ? { loadStepsPerReq: steps[who] } : {}),
    ...(saturated[who] !== undefined
      ? { saturationRps: saturated[who].rps, saturationProbes: saturated[who].probes }
      : {}),
  }));
  const comparison = compare(name, platforms.map((p) => p.name).join(','), measurements[0], measurements[1]);
  return {
    comparison: {
      ...comparison,
      run: { loadSeed: seed, tuningSeed: PROFILE_SEED, stages: [] },
      verdict: verdictOf(comparison),
    },
    measurements,
  };
}
