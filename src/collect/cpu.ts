import {
  chainSteps,
  type CpuCounters,
  type InsnMix,
  type Platform,
  type PortableCpu,
  type Workload,
} from '../model/index.js';
import { requireTool } from './bpftrace.js';
import { countersFrom, subTotals, type CgTotals } from './cachegrind.js';
import { codeSets } from './callgrind.js';
import { PROFILE_SEED } from './loadgen.js';
import { insnMix } from './mix.js';
import {
  combineCode,
  combineParts,
  combineReuse,
  scaleReuse,
  reuseTotals,
  servingReuse,
  type InsnCounts,
  type ReuseCounts,
  type ReuseRun,
} from './reuse.js';
import { portableFrom, SWEEP, sweepGeometry, type Geometry } from './sweep.js';
import type { LaunchSpec } from './target.js';
import { differentialTasks, runPairs, type VgRun } from './valgrind.js';

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
  const at = (LL: Platform['LLC']) =>
    differentialTasks(spec, w, { I1: platform.I1, D1: platform.D1, LL }, 'cachegrind', seed);
  const [a, b] = await runPairs(withL2 ? [at(platform.LLC), at(platform.L2)] : [at(platform.LLC)]);
  const llc = subTotals(a[1].totals, a[0].totals);
  const l2 = withL2 ? subTotals(b[1].totals, b[0].totals) : undefined;
  return countersFrom(llc, 2 * w.valgrindRequests, platform.name, l2, platform);
}

/** The first sweep point's two halves of a profile's measured requests (n each: the mean of
 *  the runs of 2n against the mean of the runs of n and of 3n, `runs` of each), and the
 *  differences between repeats of the same run (n, 2n and 3n), whose spread is the runs' own
 *  noise. */
export interface Linearity {
  halves: CgTotals[];
  repeats: CgTotals[];
  runs: number;
}

/** A run's counts, each process's summed; of every thread, or of those that serve requests. */
function runCounts(run: VgRun, threads: 'all' | 'serving'): ReuseCounts {
  const each = (r: ReuseRun) => (threads === 'all' ? r : servingReuse(r));
  return run.reuse.map(each).reduce((a, b) => combineReuse(a, b));
}

/** The counts of `requests` requests from a twinreuse pair: the larger run's less the
 *  smaller's. */
function reusePair(small: VgRun, large: VgRun, threads: 'all' | 'serving'): ReuseCounts {
  return combineReuse(runCounts(large, threads), runCounts(small, threads), -1);
}

/** The instructions the requests of twinreuse pairs ran on the serving threads (their sum over
 *  the pairs' differences, every process's added), and the requests they are of. */
function servingCode(runs: VgRun[], w: Workload): { code: InsnCounts; requests: number } {
  const sum = (run: VgRun) => run.reuse.map((r) => r.code).reduce((a, b) => combineCode(a, b), new Map());
  let code: InsnCounts = new Map();
  for (let i = 0; i + 1 < runs.length; i += 2)
    code = combineCode(code, combineCode(sum(runs[i + 1]), sum(runs[i]), -1));
  return { code, requests: (runs.length / 2) * 2 * w.valgrindRequests };
}

/** The instruction mix of the serving threads' instructions (`servingCode`). */
const mixOf = ({ code, requests }: ReturnType<typeof servingCode>): InsnMix =>
  insnMix({ events: [], totals: {}, objects: code }, requests);

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
  const [[small, large]] = await runPairs([differentialTasks(spec, w, g, tool, seed)]);
  return scaleReuse(reusePair(small, large, threads), 2 * w.valgrindRequests);
}

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
const portableOf = (counts: ReuseCounts, requests: number, mix: PortableCpu['mix']): PortableCpu => ({
  ...portableFrom(
    sweepAt(ALL_POINTS).map((g) => reuseTotals(counts, g)),
    requests,
    mix,
    scaleReuse(counts, requests).streams,
  ),
  ...(counts.after
    ? { afterInsnsPerReq: counts.after.map((x) => Math.max(0, Math.round(x / requests))) }
    : {}),
  ...(counts.chase ? { chasePerReq: counts.chase.map((x) => Math.max(0, x / requests)) } : {}),
});

const sweepAt = (points: number[]) => points.map((k) => sweepGeometry(SWEEP[k]));
const ALL_POINTS = SWEEP.map((_, k) => k);

/** `pairs` twinreuse pairs of the serving threads (with `middle`, each with its run of 2n). */
const reuseTasks = (spec: LaunchSpec, w: Workload, pairs: number, seed = PROFILE_SEED, middle = false) =>
  Array.from({ length: pairs }, (_, k) =>
    differentialTasks(spec, w, sweepGeometry(SWEEP[0]), 'twinreuse-serving', seed, middle, {
      k,
      of: pairs,
    }),
  );

/** The twinreuse pairs an original is measured with, in profiling and in validation, their
 *  counts' mean: a clone is tuned to them and judged against them. Each pair starts the
 *  original's stack at another placement (stackPlacement): nginx's data misses a request at a
 *  32 KiB 8-way L1 were 66, 33, 12 and 17 at four, where a clone keeps its own frames in one
 *  place, so the mean of four is the figure an original has wherever its stack lies. */
export const ORIGINAL_PAIRS = 4;

/** Per-request counters of each target's serving threads on each platform, and their
 *  instruction mix: `pairs[k]` twinreuse pairs of target k (the mean of their counts; each
 *  pair's stack at another placement, whose caches are kept apart too) give every platform's
 *  caches, the branches and the mix at once. The targets' runs share one pool. */
export async function measurePlatforms(
  specs: LaunchSpec[],
  w: Workload,
  platforms: Platform[],
  seed = PROFILE_SEED,
  pairs: number[] = specs.map(() => 2),
): Promise<{ counters: CpuCounters[]; mix: InsnMix; loadSteps: number | null }[]> {
  requireTool('valgrind', 'valgrind');
  const all = await runPairs(specs.flatMap((spec, k) => reuseTasks(spec, w, pairs[k], seed)));
  const requests = 2 * w.valgrindRequests;
  let first = 0;
  return specs.map((_, k) => {
    const each = all.slice(first, (first += pairs[k]));
    const runs = each.flat();
    const counters = platforms.map((p) => {
      const at = (LL: Platform['LLC']): Geometry => ({ I1: p.I1, D1: p.D1, LL });
      const on = (rs: VgRun[]) => {
        const [llc, l2] = servingAt(rs, [at(p.LLC), at(p.L2)]);
        return countersFrom(llc, requests, p.name, l2, p);
      };
      const placements = each.map((pair) => {
        const c = on(pair);
        return { I1Mpki: c.I1Mpki, D1Mpki: c.D1Mpki, L2Mpki: c.L2Mpki, LLCMpki: c.LLCMpki };
      });
      return { ...on(runs), placements };
    });
    const steps = chainSteps(servingCounts(runs).chase);
    return {
      counters,
      mix: mixOf(servingCode(runs, w)),
      loadSteps: steps === null ? null : steps / requests,
    };
  });
}

/** Some sweep points alone: their serving threads' totals of 2n requests, from a twinreuse
 *  pair. */
export async function measurePoints(spec: LaunchSpec, w: Workload, points: number[]): Promise<CgTotals[]> {
  requireTool('valgrind', 'valgrind');
  return servingAt((await runPairs(reuseTasks(spec, w, 1))).flat(), sweepAt(points));
}

/** Measures a target's portable CPU profile: every sweep point from `pairs` twinreuse pairs of
 *  its serving threads (their mean; one by default); with `mix`, their instruction mix, and
 *  with `codeSets` their hot code per set. */
export async function measurePortable(
  spec: LaunchSpec,
  w: Workload,
  opts: {
    mix?: boolean;
    codeSets?: boolean;
    pairs?: number;
    /** Filled with the first sweep point's two halves of the measured requests (n each), and,
     *  with two pairs or more, the repeats' differences that tell the runs' own noise. */
    linearity?: Linearity;
  } = {},
): Promise<PortableCpu> {
  requireTool('valgrind', 'valgrind');
  const pairs = opts.pairs ?? 1;
  const g = sweepGeometry(SWEEP[0]);
  // With the halves, each pair's run of 2n besides.
  const runs = await runPairs(reuseTasks(spec, w, pairs, PROFILE_SEED, !!opts.linearity));
  const reuse = runs.flatMap((r) => [r[0], r[1]]);
  if (opts.linearity) {
    // Pair i's runs of n, 2n and 3n requests (k = 0, 1, 2).
    const run = (k: 0 | 1 | 2, i: number) => runCounts([runs[i][0], runs[i][2], runs[i][1]][k], 'serving');
    const mean = (k: 0 | 1 | 2) =>
      scaleReuse(
        Array.from({ length: pairs }, (_, i) => run(k, i)).reduce((a, b) => combineReuse(a, b)),
        pairs,
      );
    opts.linearity.runs = pairs;
    opts.linearity.halves.push(
      reuseTotals(combineReuse(mean(1), mean(0), -1), g),
      reuseTotals(combineReuse(mean(2), mean(1), -1), g),
    );
    // A run's own noise: the same run repeated (the first pair's against the second's, the
    // stack at two placements: a target whose figures follow where its stack lies is allowed
    // that much more).
    if (pairs >= 2)
      for (const k of [0, 1, 2] as const)
        opts.linearity.repeats.push(reuseTotals(combineReuse(run(k, 0), run(k, 1), -1), g));
  }
  const code = opts.mix || opts.codeSets ? servingCode(reuse, w) : null;
  const out = portableOf(servingCounts(reuse), 2 * w.valgrindRequests, opts.mix && code ? mixOf(code) : null);
  if (!opts.codeSets || !code) return out;
  return { ...out, codeSets: codeSets({ events: [], totals: {}, objects: code.code }, code.requests) };
}

/** The portable profile of a clone with each of its body's parts' (per request): a twinreuse
 *  pair of its serving threads, each function named twin_... counted apart in the caches and
 *  predictors the whole clone shares, gives its totals, as an original's are measured, and
 *  every part's at every geometry at once, and its instruction mix. A part is named by `partOf` its
 *  function's name (null: none; several functions may make one part). */
export async function measureParts(
  spec: LaunchSpec,
  w: Workload,
  partOf: (fn: string) => string | null,
): Promise<{ cpu: PortableCpu; parts: Map<string, PortableCpu> }> {
  requireTool('valgrind', 'valgrind');
  const [runs] = await runPairs([differentialTasks(spec, w, sweepGeometry(SWEEP[0]), 'twinreuse-parts')]);
  const requests = 2 * w.valgrindRequests;
  const [small, large] = runs;
  const partsOf = (r: VgRun) => r.reuse.map((x) => x.parts).reduce((a, b) => combineParts(a, b), new Map());
  const byPart = new Map<string, ReuseCounts>();
  for (const [fn, c] of combineParts(partsOf(large), partsOf(small), -1)) {
    const name = partOf(fn);
    if (!name) continue;
    const into = byPart.get(name);
    byPart.set(name, into ? combineReuse(into, c) : c);
  }
  const parts = new Map([...byPart].map(([name, c]) => [name, portableOf(c, requests, null)]));
  return { cpu: portableOf(servingCounts(runs), requests, mixOf(servingCode(runs, w))), parts };
}

/** The portable profile of each of some workloads on one target (a twinreuse pair of its
 *  serving threads each, their runs in one pool): a request type measured alone. */
export async function measureEach(spec: LaunchSpec, ws: Workload[]): Promise<PortableCpu[]> {
  requireTool('valgrind', 'valgrind');
  const all = await runPairs(ws.flatMap((w) => reuseTasks(spec, w, 1)));
  return ws.map((w, k) => portableOf(servingCounts(all[k]), 2 * w.valgrindRequests, null));
}
