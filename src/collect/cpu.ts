import {
  type CpuCounters,
  type InsnMix,
  type Platform,
  type PortableCpu,
  type Workload,
} from '../model/index.js';
import { requireTool } from './bpftrace.js';
import {
  addTotals,
  CG_EVENTS,
  countersFrom,
  meanTotals,
  subTotals,
  ZERO_TOTALS,
  type CgTotals,
} from './cachegrind.js';
import {
  codeSets,
  functionCosts,
  parseCallgrind,
  subtractRuns,
  type CallgrindRun,
  type InsnCost,
} from './callgrind.js';
import { PROFILE_SEED } from './loadgen.js';
import { insnMix } from './mix.js';
import {
  combineReuse,
  parseReuse,
  scaleReuse,
  servingReuse,
  type ReuseCounts,
  type ReuseRun,
} from './reuse.js';
import { MIX_POINT, portableFrom, SWEEP, sweepGeometry } from './sweep.js';
import type { LaunchSpec } from './target.js';
import { differentialTasks, middleTask, pool, runPairs } from './valgrind.js';

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

/** Every LRU geometry's misses per request of a target: a pair of twinreuse runs, the
 *  larger's counts less the smaller's, each process's summed. With `threads: 'serving'`,
 *  only the threads that read or write feed the caches and count (`servingReuse`). */
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
  const each = (r: ReuseRun) => (threads === 'all' ? r : servingReuse(r));
  const sum = (texts: string[]) => texts.map((t) => each(parseReuse(t))).reduce((a, b) => combineReuse(a, b));
  return scaleReuse(combineReuse(sum(large.texts), sum(small.texts), -1), 2 * w.valgrindRequests);
}

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

/** Some sweep points alone (a cachegrind pair each, two runs at a time): each one's
 *  differential totals, of 2n requests. */
export async function measurePoints(spec: LaunchSpec, w: Workload, points: number[]): Promise<CgTotals[]> {
  requireTool('valgrind', 'valgrind');
  const runs = await runPairs(points.flatMap((k) => differentialTasks(spec, w, sweepGeometry(SWEEP[k]))));
  return points.map((_, i) => subTotals(runs[2 * i + 1].totals, runs[2 * i].totals));
}

/** Measures a target's portable CPU profile: the sweep, two runs at a time, the `repeat`
 *  points twice (their mean); with `mix`, the instruction mix from the callgrind pair, and
 *  with `codeSets` the hot code per set. That pair is the mix point's own, unless `mixApart`:
 *  then it is a pair besides, and every point comes from cachegrind, as validation's runs.
 *  An original needs that: callgrind slows a server more than cachegrind, and its work per
 *  request may shift (fewer instructions and mispredictions than cachegrind's pairs of the
 *  same geometry, even with both translating alike: VG_TRANSLATION). */
export async function measurePortable(
  spec: LaunchSpec,
  w: Workload,
  opts: {
    mix?: boolean;
    codeSets?: boolean;
    repeat?: number[];
    mixApart?: boolean;
    /** Filled with the first sweep point's two halves of the measured requests (n each). */
    halves?: CgTotals[];
  } = {},
): Promise<PortableCpu> {
  requireTool('valgrind', 'valgrind');
  const tasks = SWEEP.flatMap((s, k) =>
    differentialTasks(
      spec,
      w,
      sweepGeometry(s),
      opts.mix && !opts.mixApart && k === MIX_POINT ? 'callgrind' : 'cachegrind',
    ),
  );
  const again = opts.repeat ?? [];
  tasks.push(...again.flatMap((k) => differentialTasks(spec, w, sweepGeometry(SWEEP[k]))));
  if (opts.mix && opts.mixApart)
    tasks.push(...differentialTasks(spec, w, sweepGeometry(SWEEP[MIX_POINT]), 'callgrind'));
  const runs = await runPairs(tasks);
  if (opts.halves) {
    const [mid] = await pool([middleTask(spec, w, sweepGeometry(SWEEP[0]))]);
    opts.halves.push(subTotals(mid.totals, runs[0].totals), subTotals(runs[1].totals, mid.totals));
  }
  const diff2 = (i: number) => subTotals(runs[2 * i + 1].totals, runs[2 * i].totals);
  const points = SWEEP.map((_, k) =>
    again.includes(k) ? meanTotals([diff2(k), diff2(SWEEP.length + again.indexOf(k))]) : diff2(k),
  );
  const mixAt = opts.mixApart ? SWEEP.length + again.length : MIX_POINT;
  const requests = 2 * w.valgrindRequests;
  const diff = opts.mix ? callgrindDiff(runs[2 * mixAt + 1].texts, runs[2 * mixAt].texts) : null;
  const out = portableFrom(points, requests, diff ? insnMix(diff, requests) : null);
  return diff && opts.codeSets ? { ...out, codeSets: codeSets(diff, requests) } : out;
}

/** Event totals per request of each named function of a target, at one sweep point. */
export type PartCosts = Map<string, CgTotals>;

/** The per-function costs of `requests` requests: the run of 3n less the run of n, for the
 *  functions `wanted` says are of interest. */
function partsFrom(
  large: string[],
  small: string[],
  requests: number,
  wanted: (fn: string) => boolean,
): PartCosts {
  const sum = (texts: string[]) => {
    const out = new Map<string, CgTotals>();
    for (const t of texts) {
      const { events, functions } = functionCosts(t);
      for (const [fn, v] of functions) {
        if (!wanted(fn)) continue;
        const add = Object.fromEntries(CG_EVENTS.map((e) => [e, v[events.indexOf(e)] ?? 0])) as CgTotals;
        const into = out.get(fn);
        out.set(fn, into ? addTotals(into, add) : add);
      }
    }
    return out;
  };
  const s = sum(small);
  return new Map(
    [...sum(large)].map(([fn, t]) => {
      const d = subTotals(t, s.get(fn) ?? ZERO_TOTALS);
      return [fn, Object.fromEntries(CG_EVENTS.map((e) => [e, d[e] / requests])) as CgTotals];
    }),
  );
}

/** The portable profile of a clone with what each of its body's parts costs at each sweep
 *  point (per request): the same sweep, every run under callgrind's per-function counts, the
 *  mix point's per instruction as well, for the clone's instruction mix. */
export async function measureParts(
  spec: LaunchSpec,
  w: Workload,
  wanted: (fn: string) => boolean,
): Promise<{ cpu: PortableCpu; parts: PartCosts[] }> {
  requireTool('valgrind', 'valgrind');
  const runs = await runPairs(
    SWEEP.flatMap((s, k) =>
      differentialTasks(spec, w, sweepGeometry(s), k === MIX_POINT ? 'callgrind' : 'functions'),
    ),
  );
  const requests = 2 * w.valgrindRequests;
  const points = SWEEP.map((_, k) => subTotals(runs[2 * k + 1].totals, runs[2 * k].totals));
  const parts = SWEEP.map((_, k) => partsFrom(runs[2 * k + 1].texts, runs[2 * k].texts, requests, wanted));
  return {
    cpu: portableFrom(
      points,
      requests,
      mixFrom(runs[2 * MIX_POINT + 1].texts, runs[2 * MIX_POINT].texts, requests),
    ),
    parts,
  };
}
