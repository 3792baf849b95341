import { execFile } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TwinError, type Workload } from '../model/index.js';
import { addTotals, geom, parseCachegrind, ZERO_TOTALS, type CgTotals } from './cachegrind.js';
import { PROFILE_SEED, preload, runLoad, totalErrors } from './loadgen.js';
import { parseReuse, REUSE_LIB, type ReuseRun } from './reuse.js';
import type { Geometry } from './sweep.js';
import { launchTarget, type LaunchSpec, type RunningTarget } from './target.js';
import { uidOf } from './proc.js';

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

/** The names of the FIFOs vgdb talks to each process through, in a run's own folder (removed
 *  with it, also where a process was killed). */
const VGDB_PIPES = 'vgdb-pipe';

/** Every count so far of each of a twinreuse run's processes, written by the tool to
 *  `dir`/snap.`k`.PID (`vgdb` wakes a process blocked in a system call). A process not under
 *  Valgrind, or gone, writes none (valgrindRun reads a gone one's counts at exit). */
async function snapshot(pids: number[], dir: string, k: number): Promise<void> {
  await Promise.all(
    pids.map((pid) =>
      run(
        'vgdb',
        [`--vgdb-prefix=${join(dir, VGDB_PIPES)}`, `--pid=${pid}`, 'snapshot', join(dir, `snap.${k}.${pid}`)],
        { timeout: 30000 },
      ).catch(() => {}),
    ),
  );
}

/** Each process's counts from a run's files in `dir` (twinreuse), or their totals
 *  (cachegrind). */
function readRun(dir: string, files: string[], tool: Tool): VgRun {
  if (!files.length || files.some((f) => !existsSync(join(dir, f))))
    throw new TwinError(
      `${tool} wrote no counts for a process: the target may have been killed before it exited`,
    );
  const texts = files.map((f) => readFileSync(join(dir, f), 'utf8'));
  if (isReuse(tool)) {
    const reuse = texts.map(parseReuse);
    const ir = reuse.map((r) => r.instructions);
    return { totals: { ...ZERO_TOTALS, Ir: ir.reduce((a, b) => a + b, 0) }, processIr: ir, reuse };
  }
  const each = texts.map(parseCachegrind);
  return { totals: each.reduce(addTotals), processIr: each.map((t) => t.Ir), reuse: [] };
}

/** Placement k of a measurement's `of` pairs. */
export interface Placement {
  k: number;
  of: number;
}
const ONE: Placement = { k: 0, of: 1 };

/** The span of stack placements: a 64 KiB L2 way (1 MiB 16-way) and every L1's. */
const PLACEMENT_SPAN = 65536;
/** Of the span, placement k of `of` starts this far in: placements spread evenly over the
 *  span and over a 4 KiB L1 way both (with two, 4 KiB and 36 KiB modulo 64 KiB: 2 KiB apart
 *  modulo 4 KiB, 34 KiB modulo 64 KiB). */
export const placementOffset = (k: number, of: number) =>
  (16 * Math.round((k * (PLACEMENT_SPAN + 4096)) / of / 16)) % PLACEMENT_SPAN;

/** Shell lines that set where a target's stack begins, whatever environment Twin runs in:
 *  without address-space randomization the kernel places the stack below the environment's
 *  strings, so the environment's size sets which cache sets a server's stack frames fall
 *  in. TWIN_STACK_PAD fills the environment (its strings and their pointers) to a size
 *  fixed by `placement` (k of `of`): the same under npm as from a shell, and each of a
 *  measurement's pairs at another offset, so that their mean is over more than one draw. */
export function stackPlacement({ k, of }: Placement = ONE): string {
  const at = PLACEMENT_SPAN + placementOffset(k, of);
  return [
    'unset TWIN_STACK_PAD',
    // Bytes of the environment's strings (NULs included) and of their pointers.
    'twin_b=$(( $(env -0 | wc -c) + 8 * $(env -0 | tr -cd "\\0" | wc -c) + 8 ))',
    // The pad's own: 'TWIN_STACK_PAD=' and its NUL (16 bytes), and its pointer (8).
    `twin_n=$(( ${at} - twin_b % ${PLACEMENT_SPAN} - 24 ))`,
    `[ "$twin_n" -ge 0 ] || twin_n=$(( twin_n + ${PLACEMENT_SPAN} ))`,
    'export TWIN_STACK_PAD=$(head -c "$twin_n" /dev/zero | tr "\\0" x)',
    'unset twin_b twin_n',
  ].join('\n');
}

/** One Valgrind run: start the target under the tool, preload, send `requests` requests,
 *  stop it. Its counts at exit; with `marks` (twinreuse), its counts after each mark's
 *  requests and after the last request instead, one run each, all of one process. */
async function valgrindRun(
  spec: LaunchSpec,
  w: Workload,
  g: Geometry,
  requests: number,
  rate: number,
  tool: Tool,
  seed: number,
  marks: number[] = [],
  placement = ONE,
): Promise<VgRun[]> {
  if (isReuse(tool) && !existsSync(join(REUSE_LIB, 'twinreuse-amd64-linux')))
    throw new TwinError('twinreuse is not built: run scripts/bootstrap.sh');
  const outDir = mkdtempSync(join(tmpdir(), 'twin-vg-'));
  // A driver of the target's own cannot pause at a mark: counts at a mark come from a run that
  // ends there.
  let separate = w.driver.name !== 'twin-load';
  // Written by every process the tool runs, those that dropped their privileges too.
  chmodSync(outDir, 0o777);
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
    `--vgdb-prefix=${join(outDir, VGDB_PIPES)}`,
  ];
  try {
    // Valgrind keeps file descriptors of its own above the hard limit; servers that raise
    // their soft limit to the hard one fail unless both are set equal (memcached does).
    const target = await launchTarget({
      ...spec,
      wrapper,
      preamble: `ulimit -Sn 1036 -Hn 1036 2>/dev/null\n${stackPlacement(placement)}`,
      startSlowdown: 6,
    });
    try {
      if (w.preload) await preload(w, target.port, 30000);
      // A data set that only the load itself fills (no preload) is warmed by it, on a sequence
      // of its own, so that a pair's difference is of requests in a steady state. Its requests
      // leave the data set in place and are not counted, so they go as fast as the target
      // takes them, one in flight a connection: churn's 10,000 in 7 s, 13 one at a time.
      if (w.valgrindWarmup > 0)
        await runLoad(w, target.port, {
          rate: WARMUP_RATE,
          duration: VG_SLACK * (w.valgrindWarmup / rate) + 10,
          warmup: 0,
          maxRequests: w.valgrindWarmup,
          maxInflight: w.connections,
          dist: 'constant',
          timeoutMs: 30000,
          seed: seed + WARMUP_SEED_OFFSET,
        });
      await measured(target);
    } finally {
      await target.stop();
    }
    // Every process the tool ran, as its exit counts name them.
    const pids = readdirSync(outDir)
      .filter((f) => /^out\.\d+$/.test(f))
      .map((f) => f.slice(4));
    const atExit = () =>
      readRun(
        outDir,
        pids.map((p) => `out.${p}`),
        tool,
      );
    if (!marks.length) return [atExit()];
    if (separate) {
      // The counts at each mark from a run that ends there, and this run's at its end.
      const runs: VgRun[] = [];
      for (const n of marks)
        runs.push(...(await valgrindRun(spec, w, g, n, rate, tool, seed, [], placement)));
      return [...runs, atExit()];
    }
    // At every mark, each process's snapshot, or where it had ended before the mark (none
    // then or later), its counts at exit.
    const ks = [...marks.keys(), marks.length];
    const at = (k: number, pid: string) =>
      ks.slice(k).some((j) => existsSync(join(outDir, `snap.${j}.${pid}`)))
        ? `snap.${k}.${pid}`
        : `out.${pid}`;
    return ks.map((k) =>
      readRun(
        outDir,
        pids.map((p) => at(k, p)),
        tool,
      ),
    );
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }

  /** The measured requests, one at a time: a target that falls behind its schedule under
   *  Valgrind would otherwise take requests in bursts, and its counts would follow the
   *  machine's speed. */
  async function measured(target: RunningTarget): Promise<void> {
    const r = await runLoad(w, target.port, {
      rate,
      duration: VG_SLACK * (requests / rate) + 10 + SNAPSHOT_S * marks.length,
      warmup: 0,
      maxRequests: requests,
      maxInflight: 1,
      dist: 'constant',
      timeoutMs: 30000,
      seed,
      marks: separate ? [] : marks,
      onMark: async (k) => {
        // vgdb cannot reach a process that dropped its privileges (Apache's children, as
        // www-data: its snapshots time out); such a target's counts at a mark come from a
        // run that ends there. By the first mark its processes have.
        const me = process.getuid?.() ?? 0;
        separate ||= target.pids().some((p) => (uidOf(p) ?? me) !== me);
        if (!separate) await snapshot(target.pids(), outDir, marks.indexOf(k));
      },
    });
    if (marks.length && !separate) await snapshot(target.pids(), outDir, marks.length);
    if (totalErrors(r) > r.sent * 0.01)
      throw new TwinError(
        `under Valgrind the target failed ${totalErrors(r)} of ${r.sent} requests: lower valgrindRequests or check the target`,
      );
    if (r.sent < requests)
      throw new TwinError(
        `under Valgrind the target answered ${r.sent} of ${requests} requests in the time allowed: lower valgrindRequests or check the target`,
      );
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

const run = promisify(execFile);
/** Seconds a snapshot may add to a run's load. */
const SNAPSHOT_S = 5;

/** A brisk rate keeps the time-driven work of background threads small beside the requests'. */
const VG_RATE = 1000;
/** The warm-up's rate: as fast as a target under Valgrind answers. */
const WARMUP_RATE = 20 * VG_RATE;
/** The warm-up's load seed, this far from the measured requests'. */
const WARMUP_SEED_OFFSET = 7919;
/** How much longer than its schedule a Valgrind run may take to send its requests. */
const VG_SLACK = 8;

/** A Valgrind process for the pool: its runs' counts. */
export type VgTask = () => Promise<VgRun[]>;

/** A differential measurement: runs of n and 3n requests, whose difference is 2n requests'
 *  work, start-up, warm-up and shutdown cancelled out; with `middle`, a run of 2n besides
 *  (the pair method's linearity). Under twinreuse the runs are one process's counts after n,
 *  2n and 3n requests (snapshots): its one start-up and warm-up where each run took its own,
 *  and the runs' difference nothing but the same requests on the same connections. Under
 *  cachegrind, a process each. runPairs gives the runs as [n, 3n, 2n]. `placement` is k of a
 *  measurement's pairs (stackPlacement). */
export function differentialTasks(
  spec: LaunchSpec,
  w: Workload,
  g: Geometry,
  tool: Tool = 'cachegrind',
  seed = PROFILE_SEED,
  middle = false,
  placement = ONE,
): VgTask[] {
  const n = w.valgrindRequests;
  const go =
    (requests: number, marks: number[] = []) =>
    () =>
      valgrindRun(spec, w, g, requests, VG_RATE, tool, seed, marks, placement);
  if (!isReuse(tool)) return [go(n), go(3 * n), ...(middle ? [go(2 * n)] : [])];
  const snapshots = go(3 * n, middle ? [n, 2 * n] : [n]);
  return [
    async () => {
      const r = await snapshots(); // after n, (2n,) 3n
      return middle ? [r[0], r[2], r[1]] : r;
    },
  ];
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

/** Each measurement's runs, its processes two at a time, the longest first (a run of 3n, then
 *  2n, then n) so that two cores finish together. */
async function runAll(measurements: VgTask[][]): Promise<VgRun[][]> {
  const tasks = measurements.flatMap((m, i) =>
    m.map((go, j) => ({ go, i, size: m.length > 1 ? [1, 3, 2][j] : 3 })),
  );
  const order = tasks.map((_, k) => k).sort((a, b) => tasks[b].size - tasks[a].size);
  const done = await pool(
    tasks.map((t) => t.go),
    2,
    order,
  );
  const runs: VgRun[][] = measurements.map(() => []);
  tasks.forEach((t, k) => runs[t.i].push(...done[k]));
  return runs;
}

/** Runs differential measurements (differentialTasks), and a measurement of a process a run
 *  again, up to PAIR_RETRIES times, while its runs of n and 3n disagree. Each measurement's
 *  runs, as [n, 3n, 2n]. */
export async function runPairs(measurements: VgTask[][]): Promise<VgRun[][]> {
  const runs = await runAll(measurements);
  for (let k = 0; k < PAIR_RETRIES; k++) {
    const bad = measurements
      .map((_, i) => i)
      .filter((i) => measurements[i].length > 1 && !pairAgrees(runs[i][0], runs[i][1]));
    if (!bad.length) break;
    const again = await runAll(bad.map((i) => measurements[i]));
    bad.forEach((i, j) => (runs[i] = again[j]));
  }
  return runs;
}
