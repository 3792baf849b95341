import {
  type CpuCounters,
  type InsnMix,
  type Platform,
  type PortableCpu,
  type Workload,
} from '../model/index.js';
import { requireTool } from './bpftrace.js';
import { countersFrom, subTotals, type CgTotals } from './cachegrind.js';
import { codeSets, parseCallgrind, subtractRuns, type CallgrindRun, type InsnCost } from './callgrind.js';
import { PROFILE_SEED } from './loadgen.js';
import { insnMix } from './mix.js';
import {
  combineParts,
  combineReuse,
  parseReuse,
  scaleReuse,
  reuseTotals,
  servingReuse,
  type ReuseCounts,
  type ReuseRun,
} from './reuse.js';
import { MIX_POINT, portableFrom, SWEEP, sweepGeometry, type Geometry } from './sweep.js';
import type { LaunchSpec } from './target.js';
import { differentialTasks, middleTask, pool, runPairs, type VgRun } from './valgrind.js';

/** The measurements made of Valgrind runs: a platform's counters, the instruction mix, the
 *  size sweep of the portable profile, some sweep points alone, a clone's parts. */
/** Per-request CPU counters of a target on a simulated platform: a pair of runs with the
 *  LLC as last level, and with `withL2` another pair with the L2 as last level. */
export async function measureCpu(
  spec: LaunchSpec,
  w: Workload,
  platform: Platform,
  withL2 = false,
  seed = PROFILE_SEED,
): Promise<CpuCounters> {
  requireTool('valgrind', 'valgrind');
  const tasks = differentialTasks(
    spec,
    w,
    { I1: platform.I1, D1: platform.D1, LL: platform.LLC },
    'cachegrind',
    seed,
  );
  if (withL2)
    tasks.push(
      ...differentialTasks(
        spec,
        w,
        { I1: platform.I1, D1: platform.D1, LL: platform.L2 },
        'cachegrind',
        seed,
      ),
    );
  const runs = await runPairs(tasks);
  const llc = subTotals(runs[1].totals, runs[0].totals);
  const l2 = withL2 ? subTotals(runs[3].totals, runs[2].totals) : undefined;
  return countersFrom(llc, 2 * w.valgrindRequests, platform.name, l2, platform);
}

/** The counts of `requests` requests from a twinreuse pair: the larger run's less the
 *  smaller's, each process's summed; of every thread, or of those that serve requests. */
function reusePair(small: VgRun, large: VgRun, threads: 'all' | 'serving'): ReuseCounts {
  const each = (r: ReuseRun) => (threads === 'all' ? r : servingReuse(r));
  const sum = (texts: string[]) => texts.map((t) => each(parseReuse(t))).reduce((a, b) => combineReuse(a, b));
  return combineReuse(sum(large.texts), sum(small.texts), -1);
}

/** Every LRU geometry's misses per request of a target: a pair of twinreuse runs. With
 *  `threads: 'serving'`, only the threads that read or write feed the caches and count
 *  (`servingReuse`). */
export async function measureReuse(
  spec: LaunchSpec,
  w: Workload,
  threads: 'all' | 'serving' = 'all',
  seed = PROFILE_SEED,
): Promise<ReuseCounts> {
  requireTool('valgrind', 'valgrind');
  const g = sweepGeometry(SWEEP[0]);
  const tool = threads === 'all' ? 'twinreuse' : 'twinreuse-serving';
  const [small, large] = await runPairs(differentialTasks(spec, w, g, tool, seed));
  return scaleReuse(reusePair(small, large, threads), 2 * w.valgrindRequests);
}

/** The dynamic instruction mix of a target: a pair of callgrind runs. */
export async function measureMix(spec: LaunchSpec, w: Workload, seed = PROFILE_SEED): Promise<InsnMix> {
  requireTool('valgrind', 'valgrind');
  const g = sweepGeometry(SWEEP[MIX_POINT]);
  const [small, large] = await runPairs(differentialTasks(spec, w, g, 'callgrind', seed));
  return mixFrom(large.texts, small.texts, 2 * w.valgrindRequests);
}

/** The files of one run's processes as one (the same program's objects add up). */
function mergeRuns(runs: CallgrindRun[]): CallgrindRun {
  const objects = new Map<string, Map<number, InsnCost>>();
  for (const r of runs)
    for (const [path, costs] of r.objects) {
      const into = objects.get(path) ?? new Map<number, InsnCost>();
      objects.set(path, into);
      for (const [addr, c] of costs) {
        const o = into.get(addr);
        into.set(
          addr,
          o
            ? { ir: o.ir + c.ir, bc: o.bc + c.bc, taken: o.taken + c.taken, execs: o.execs + c.execs }
            : { ...c },
        );
      }
    }
  const events = runs[0]?.events ?? [];
  const totals = Object.fromEntries(events.map((e) => [e, runs.reduce((s, r) => s + (r.totals[e] ?? 0), 0)]));
  return { events, totals, objects };
}

/** The instruction mix of `requests` requests: the callgrind run of 3n requests less the run
 *  of n, instruction by instruction. */
function mixFrom(large: string[], small: string[], requests: number): InsnMix {
  return insnMix(callgrindDiff(large, small), requests);
}

const callgrindDiff = (large: string[], small: string[]) =>
  subtractRuns(mergeRuns(large.map(parseCallgrind)), mergeRuns(small.map(parseCallgrind)));

/** The counts of 2n requests of a target's serving threads, the mean of twinreuse pairs':
 *  instructions, every cache, branches. A server's background threads never read or write;
 *  under Valgrind their work follows the clock, not the requests (memcached's timed threads
 *  ran 60% of its instructions a request there), and their time on a real machine is measured
 *  apart. */
function servingCounts(reuse: VgRun[]): ReuseCounts {
  const pairs = Array.from({ length: reuse.length / 2 }, (_, i) =>
    reusePair(reuse[2 * i], reuse[2 * i + 1], 'serving'),
  );
  return scaleReuse(
    pairs.reduce((a, b) => combineReuse(a, b)),
    pairs.length,
  );
}

/** The serving threads' totals of 2n requests at some geometries (`servingCounts`). */
const servingAt = (reuse: VgRun[], geometries: Geometry[]): CgTotals[] => {
  const counts = servingCounts(reuse);
  return geometries.map((g) => reuseTotals(counts, g));
};

/** The portable profile of `requests` requests from their counts: the sweep's points, and
 *  every geometry's misses per request. */
const portableOf = (counts: ReuseCounts, requests: number, mix: PortableCpu['mix']): PortableCpu =>
  portableFrom(
    sweepAt(ALL_POINTS).map((g) => reuseTotals(counts, g)),
    requests,
    mix,
    scaleReuse(counts, requests).streams,
  );

const sweepAt = (points: number[]) => points.map((k) => sweepGeometry(SWEEP[k]));
const ALL_POINTS = SWEEP.map((_, k) => k);

/** The tasks of `pairs` twinreuse pairs of the serving threads. */
const reuseTasks = (spec: LaunchSpec, w: Workload, pairs: number, seed = PROFILE_SEED) =>
  Array.from({ length: pairs }, () =>
    differentialTasks(spec, w, sweepGeometry(SWEEP[0]), 'twinreuse-serving', seed),
  ).flat();

/** Per-request counters of a target's serving threads on each platform: `pairs` twinreuse pairs
 *  (the mean of their counts) give every platform's caches and the branches at once. */
export async function measurePlatforms(
  spec: LaunchSpec,
  w: Workload,
  platforms: Platform[],
  seed = PROFILE_SEED,
  pairs = 2,
): Promise<CpuCounters[]> {
  requireTool('valgrind', 'valgrind');
  const runs = await runPairs(reuseTasks(spec, w, pairs, seed));
  const requests = 2 * w.valgrindRequests;
  return platforms.map((p) => {
    const at = (LL: Platform['LLC']): Geometry => ({ I1: p.I1, D1: p.D1, LL });
    const [llc, l2] = servingAt(runs, [at(p.LLC), at(p.L2)]);
    return countersFrom(llc, requests, p.name, l2, p);
  });
}

/** Some sweep points alone: their serving threads' totals of 2n requests, from a twinreuse
 *  pair. */
export async function measurePoints(spec: LaunchSpec, w: Workload, points: number[]): Promise<CgTotals[]> {
  requireTool('valgrind', 'valgrind');
  return servingAt(await runPairs(reuseTasks(spec, w, 1)), sweepAt(points));
}

/** Measures a target's portable CPU profile: every sweep point from `pairs` twinreuse pairs of
 *  its serving threads (their mean; one by default); with `mix`, the instruction mix from a
 *  callgrind pair besides, and with `codeSets` the hot code per set. The mix and the hot code
 *  are of every thread: callgrind cannot tell them apart. */
export async function measurePortable(
  spec: LaunchSpec,
  w: Workload,
  opts: {
    mix?: boolean;
    codeSets?: boolean;
    pairs?: number;
    /** Filled with the first sweep point's two halves of the measured requests (n each). */
    halves?: CgTotals[];
  } = {},
): Promise<PortableCpu> {
  requireTool('valgrind', 'valgrind');
  const pairs = opts.pairs ?? 1;
  const runs = await runPairs([
    ...reuseTasks(spec, w, pairs),
    ...(opts.mix ? differentialTasks(spec, w, sweepGeometry(SWEEP[MIX_POINT]), 'callgrind') : []),
  ]);
  const reuse = runs.slice(0, 2 * pairs);
  if (opts.halves) {
    const g = sweepGeometry(SWEEP[0]);
    const [mid] = await pool([middleTask(spec, w, g, 'twinreuse-serving')]);
    opts.halves.push(
      reuseTotals(reusePair(reuse[0], mid, 'serving'), g),
      reuseTotals(reusePair(mid, reuse[1], 'serving'), g),
    );
  }
  const requests = 2 * w.valgrindRequests;
  const [ms, ml] = runs.slice(2 * pairs);
  const diff = opts.mix ? callgrindDiff(ml.texts, ms.texts) : null;
  const out = portableOf(servingCounts(reuse), requests, diff ? insnMix(diff, requests) : null);
  return diff && opts.codeSets ? { ...out, codeSets: codeSets(diff, requests) } : out;
}

/** The portable profile of a clone with each of its body's parts' (per request): a twinreuse
 *  pair of its serving threads, each function named twin_... counted apart in the caches and
 *  predictors the whole clone shares, gives its totals, as an original's are measured, and
 *  every part's at every geometry at once; a callgrind pair at the mix point gives its
 *  instruction mix (of every thread, as an original's). A part is named by `partOf` its
 *  function's name (null: none; several functions may make one part). */
export async function measureParts(
  spec: LaunchSpec,
  w: Workload,
  partOf: (fn: string) => string | null,
): Promise<{ cpu: PortableCpu; parts: Map<string, PortableCpu> }> {
  requireTool('valgrind', 'valgrind');
  const runs = await runPairs([
    ...differentialTasks(spec, w, sweepGeometry(SWEEP[0]), 'twinreuse-parts'),
    ...differentialTasks(spec, w, sweepGeometry(SWEEP[MIX_POINT]), 'callgrind'),
  ]);
  const requests = 2 * w.valgrindRequests;
  const [small, large, ms, ml] = runs;
  const partsOf = (r: VgRun) =>
    r.texts.map((t) => parseReuse(t).parts).reduce((a, b) => combineParts(a, b), new Map());
  const byPart = new Map<string, ReuseCounts>();
  for (const [fn, c] of combineParts(partsOf(large), partsOf(small), -1)) {
    const name = partOf(fn);
    if (!name) continue;
    const into = byPart.get(name);
    byPart.set(name, into ? combineReuse(into, c) : c);
  }
  const parts = new Map([...byPart].map(([name, c]) => [name, portableOf(c, requests, null)]));
  const mix = mixFrom(ml.texts, ms.texts, requests);
  return { cpu: portableOf(servingCounts([small, large]), requests, mix), parts };
}
