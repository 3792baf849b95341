import { existsSync, readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TwinError, type Workload } from '../model/index.js';
import { addTotals, geom, parseCachegrind, ZERO_TOTALS, type CgTotals } from './cachegrind.js';
import { PROFILE_SEED, preload, runLoad, totalErrors } from './loadgen.js';
import { parseReuse, REUSE_LIB, type ReuseRun } from './reuse.js';
import type { Geometry } from './sweep.js';
import { launchTarget, type LaunchSpec } from './target.js';

/** How every Valgrind run translates the target: superblocks end at a jump rather than
 *  follow it. Callgrind allows no other way; cachegrind, left to follow jumps, counts some
 *  instructions twice where a followed branch turns back and sees another set of branch
 *  outcomes than callgrind does. With both tools translating alike, a clone tuned under one
 *  is validated under the other on the same counts. */
export const VG_TRANSLATION = ['--vex-guest-chase=no'];

/** cachegrind: totals; twinreuse: every LRU geometry's misses (the geometry given is not used), over all threads'
 *  accesses or (twinreuse-serving) those of the threads that read or write; twinreuse-parts:
 *  as twinreuse-serving, with each function named twin_... (a clone's parts) counted apart. */
export type Tool = 'cachegrind' | ReuseTool;
type ReuseTool = 'twinreuse' | 'twinreuse-serving' | 'twinreuse-parts';
const isReuse = (t: Tool): t is ReuseTool => t.startsWith('twinreuse');

/** The prefix of the functions a clone's body is made of (src/generate). */
export const PART_PREFIX = 'twin_';

/** What one Valgrind run gives: the event totals summed over the target's processes, each
 *  process's instructions, and with twinreuse each process's counts. */
export interface VgRun {
  totals: CgTotals;
  processIr: number[];
  reuse: ReuseRun[];
}

/** cachegrind simulating geometry `g`, output files in `dir`. */
function cachegrindWith(g: Geometry, dir: string): string[] {
  return [
    'valgrind',
    '--tool=cachegrind',
    '--cache-sim=yes',
    '--branch-sim=yes',
    `--I1=${geom(g.I1)}`,
    `--D1=${geom(g.D1)}`,
    `--LL=${geom(g.LL)}`,
    `--cachegrind-out-file=${dir}/out.%p`,
  ];
}

/** One Valgrind run: start the target under the tool, preload, send `requests` requests,
 *  stop it. */
async function valgrindRun(
  spec: LaunchSpec,
  w: Workload,
  g: Geometry,
  requests: number,
  rate: number,
  tool: Tool,
  seed: number,
): Promise<VgRun> {
  if (isReuse(tool) && !existsSync(join(REUSE_LIB, 'twinreuse-amd64-linux')))
    throw new TwinError('twinreuse is not built: run scripts/bootstrap.sh');
  const outDir = mkdtempSync(join(tmpdir(), 'twin-vg-'));
  // Without address-space randomization (setarch -R): where a server's data lies sets which
  // of a 4-way cache's sets they crowd, and that should not move from run to run.
  const twinreuse = [
    'env',
    `VALGRIND_LIB=${REUSE_LIB}`,
    'valgrind',
    '--tool=twinreuse',
    `--out-file=${outDir}/out.%p`,
    `--threads=${tool === 'twinreuse' ? 'all' : 'serving'}`,
    ...(tool === 'twinreuse-parts' ? [`--parts=${PART_PREFIX}`] : []),
    // The serving threads' instruction mix comes from the same run.
    ...(tool === 'twinreuse' ? [] : ['--instrs=yes']),
  ];
  const wrapper = [
    'setarch',
    '-R',
    ...(isReuse(tool) ? twinreuse : cachegrindWith(g, outDir)),
    ...VG_TRANSLATION,
    '--trace-children=yes',
    '--log-file=/dev/null',
  ];
  try {
    // Valgrind keeps file descriptors of its own above the hard limit; servers that raise
    // their soft limit to the hard one fail unless both are set equal (memcached does).
    const target = await launchTarget({
      ...spec,
      wrapper,
      preamble: 'ulimit -Sn 1036 -Hn 1036 2>/dev/null',
      startSlowdown: 6,
    });
    try {
      if (w.preload) await preload(w, target.port, 30000);
      // A data set that only the load itself fills (no preload) is warmed by it, on a sequence
      // of its own, so that a pair's difference is of requests in a steady state.
      if (w.valgrindWarmup > 0)
        await runLoad(w, target.port, {
          rate,
          duration: VG_SLACK * (w.valgrindWarmup / rate) + 10,
          warmup: 0,
          maxRequests: w.valgrindWarmup,
          maxInflight: 1,
          dist: 'constant',
          timeoutMs: 30000,
          seed: seed + WARMUP_SEED_OFFSET,
        });
      // One request at a time: a target that falls behind its schedule under Valgrind would
      // otherwise take requests in bursts, and its counts would follow the machine's speed.
      const r = await runLoad(w, target.port, {
        rate,
        duration: VG_SLACK * (requests / rate) + 10,
        warmup: 0,
        maxRequests: requests,
        maxInflight: 1,
        dist: 'constant',
        timeoutMs: 30000,
        seed,
      });
      if (totalErrors(r) > r.sent * 0.01)
        throw new TwinError(
          `under Valgrind the target failed ${totalErrors(r)} of ${r.sent} requests: lower valgrindRequests or check the target`,
        );
      if (r.sent < requests)
        throw new TwinError(
          `under Valgrind the target answered ${r.sent} of ${requests} requests in the time allowed: lower valgrindRequests or check the target`,
        );
    } finally {
      await target.stop();
    }
    const files = readdirSync(outDir).filter((f) => f.startsWith('out.'));
    if (!files.length)
      throw new TwinError(`${tool} wrote no output: the target may have been killed before it exited`);
    const texts = files.map((f) => readFileSync(join(outDir, f), 'utf8'));
    if (isReuse(tool)) {
      const reuse = texts.map(parseReuse);
      const ir = reuse.map((r) => r.instructions);
      return {
        totals: { ...ZERO_TOTALS, Ir: ir.reduce((a, b) => a + b, 0) },
        processIr: ir,
        reuse,
      };
    }
    const each = texts.map(parseCachegrind);
    return {
      totals: each.reduce(addTotals),
      processIr: each.map((t) => t.Ir),
      reuse: [],
    };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** Runs tasks, `width` at a time (Valgrind runs one target thread at a time: two runs keep
 *  two cores busy), starting them in `order` (default: as given). */
export async function pool<T>(tasks: (() => Promise<T>)[], width = 2, order?: number[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  const queue = order ?? tasks.map((_, i) => i);
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const i = queue[next++];
      out[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
  return out;
}

/** The order that starts the longest runs first: a pair's 3n runs, then the others (`extra`
 *  runs of 2n before the n runs), so that two cores finish together. */
function longestFirst(pairs: number, extra: number): number[] {
  const large = Array.from({ length: pairs }, (_, i) => 2 * i + 1);
  const small = Array.from({ length: pairs }, (_, i) => 2 * i);
  const more = Array.from({ length: extra }, (_, i) => 2 * pairs + i);
  return [...large, ...more, ...small];
}

/** A brisk rate keeps the time-driven work of background threads small beside the requests'. */
const VG_RATE = 1000;
/** The warm-up's load seed, this far from the measured requests'. */
const WARMUP_SEED_OFFSET = 7919;
/** How much longer than its schedule a Valgrind run may take to send its requests. */
const VG_SLACK = 8;

/** The two runs of a differential measurement: n and 3n requests; their difference is 2n
 *  requests' work, start-up and shutdown cancelled out. */
export function differentialTasks(
  spec: LaunchSpec,
  w: Workload,
  g: Geometry,
  tool: Tool = 'cachegrind',
  seed = PROFILE_SEED,
) {
  const n = w.valgrindRequests;
  return [
    () => valgrindRun(spec, w, g, n, VG_RATE, tool, seed),
    () => valgrindRun(spec, w, g, 3 * n, VG_RATE, tool, seed),
  ];
}

/** One run of 2n requests: with a pair's runs of n and 3n, the two halves of the measured
 *  requests apart (the pair method's linearity). */
export function middleTask(spec: LaunchSpec, w: Workload, g: Geometry, tool: Tool, seed = PROFILE_SEED) {
  return () => valgrindRun(spec, w, g, 2 * w.valgrindRequests, VG_RATE, tool, seed);
}

/** A process served requests in a run when its instructions pass the run's smallest
 *  process's by this share of the run's work for its requests. */
const ACTIVE_SHARE = 0.05;
/** How many more times a pair whose runs disagree is run. */
const PAIR_RETRIES = 2;

/** How many of a run's processes served requests, given the instructions its requests took. */
export function activeProcesses(processIr: number[], work: number): number {
  const least = Math.min(...processIr);
  return processIr.filter((ir) => ir - least > ACTIVE_SHARE * work).length;
}

/** Whether a pair's runs (n and 3n requests) had as many processes serving. Where a server's
 *  workers race for the connections, one run may have one worker serve them all and the
 *  other two: the difference then holds a worker's warm-up as if it were requests' work,
 *  and its misses a request come out far from the pairs that agree. */
export function pairAgrees(
  small: Pick<VgRun, 'totals' | 'processIr'>,
  large: Pick<VgRun, 'totals' | 'processIr'>,
): boolean {
  const n = (large.totals.Ir - small.totals.Ir) / 2;
  return activeProcesses(small.processIr, n) === activeProcesses(large.processIr, 3 * n);
}

/** Runs pairs of tasks (n and 3n requests), and `extra` tasks after them in the list, two runs
 *  at a time, the longest first, and runs a pair again, up to PAIR_RETRIES times, while its runs
 *  disagree. */
export async function runPairs(tasks: (() => Promise<VgRun>)[], extra = 0): Promise<VgRun[]> {
  const pairs = (tasks.length - extra) / 2;
  const runs = await pool(tasks, 2, longestFirst(pairs, extra));
  for (let k = 0; k < PAIR_RETRIES; k++) {
    const bad = Array.from({ length: pairs }, (_, i) => i).filter(
      (i) => !pairAgrees(runs[2 * i], runs[2 * i + 1]),
    );
    if (!bad.length) break;
    const again = await pool(
      bad.flatMap((i) => [tasks[2 * i], tasks[2 * i + 1]]),
      2,
      longestFirst(bad.length, 0),
    );
    bad.forEach((i, j) => {
      runs[2 * i] = again[2 * j];
      runs[2 * i + 1] = again[2 * j + 1];
    });
  }
  return runs;
}
