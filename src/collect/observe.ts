import { SOCKET_RECV_CALLS, SOCKET_SEND_CALLS, TwinError, type Workload } from '../model/index.js';
import { preload, runLoad, type LoadResult } from './loadgen.js';
import { markFds, startTracer, type SyscallTrace } from './bpftrace.js';
import { transactionKinds } from './pgbench.js';
import { cpuNs, cpuTicks, fdClasses, rssBytes, tasks } from './proc.js';
import { median } from '../util/stats.js';
import type { RunningTarget } from './target.js';

/** Seconds of each untraced warm-up window at a rate before it is measured. */
export const SETTLE_WINDOW_S = 2;

/** Seconds of a target's first warm-up window: a pool that forks once a second for the load's
 *  connections (1, 2, 4, 8 more: Apache's prefork from 8 to 23 children for 16 connections)
 *  reaches its size within it. In windows of 2 s the connections closed between ticks and each
 *  window's growth began again at 1, at whatever phase the server's ticks had: the original
 *  ended with 19 processes, its clone beside it with 24, on the same windows. */
export const GROW_WINDOW_S = 6;

/** A warm-up window is steady when the target's resident memory grew by at most this share
 *  of it, or by at most `SETTLE_FLOOR` bytes (an allocator's page-level jitter): a data set
 *  still filling grows with every new item, one at rest reuses its memory. */
const SETTLE_SHARE = 0.01;
const SETTLE_FLOOR = 256 * 1024;

const mib = (b: number) => (b / 2 ** 20).toFixed(1);

/** Requests each running target has been sent through this module's loads so far (its
 *  settling, traced and untraced runs): where a traced window falls in the target's history. */
const sentTo = new WeakMap<RunningTarget, number>();
export const sentSoFar = (target: RunningTarget) => sentTo.get(target) ?? 0;

/** One load run on a target, its requests counted into the target's history. */
async function drive(
  target: RunningTarget,
  w: Workload,
  o: Parameters<typeof runLoad>[2],
): Promise<LoadResult> {
  const r = await runLoad(w, target.port, o);
  sentTo.set(target, sentSoFar(target) + r.sent);
  return r;
}

/** Untraced windows of load at `rate` until one leaves the target's memory steady (at least
 *  two, the first taking the connections' set-up), at most `w.settle` seconds: past that, one
 *  line says the target did not settle and what to change. Servers adapt to their load too
 *  (background threads that poll more often when busy), which the windows give them time for.
 *  Returns the seconds it took. */
export async function settle(target: RunningTarget, w: Workload, rate: number): Promise<number> {
  const t0 = Date.now();
  let rss = rssBytes(target.pids());
  for (let k = 0; ; k++) {
    const duration = sentSoFar(target) === 0 ? GROW_WINDOW_S : SETTLE_WINDOW_S;
    await drive(target, w, { rate, duration, warmup: 0, seed: 7 + k });
    const now = rssBytes(target.pids());
    const grew = now - rss;
    rss = now;
    const seconds = (Date.now() - t0) / 1000;
    if (k >= 1 && grew <= Math.max(SETTLE_FLOOR, SETTLE_SHARE * now)) return seconds;
    if (seconds + SETTLE_WINDOW_S > w.settle)
      throw new TwinError(
        `the target did not settle in ${w.settle} s at ${rate} requests/s: its memory grew ${mib(grew)} MiB in the last ${duration} s (to ${mib(now)} MiB); preload its data set (\`preload\`, \`keys\`) or allow more warm-up (\`settle\` in the workload)`,
      );
  }
}

/** Seconds of the untraced run after it that times each thread (`threadCpu`), a second at a
 *  time: a thread's CPU time a second is its median over those seconds, since a background
 *  thread's time moves widely from one window to the next. */
export const THREAD_CPU_S = 8;

/** What one traced load run on a running target saw. */
export interface Observation {
  load: LoadResult;
  trace: SyscallTrace | null;
  /** CPU nanoseconds of the target's processes during the run (warm-up included). */
  cpuNs: number;
  /** The share of that time spent in the kernel (system time over user and system, in clock
   *  ticks); null where the run was too short to count a tick. */
  sysShare: number | null;
  threads: number;
  /** With `threadCpu`: CPU nanoseconds a second of each thread (by TID) in an untraced run at
   *  the same rate after the traced one (tracing every system call adds to each thread's
   *  time, most to a background thread that makes a call each wake-up); else empty. */
  threadNsPerSec: Map<number, number>;
  /** With `threadCpu`: that untraced run's load result (more of the same requests); else null. */
  untraced: LoadResult | null;
  /** Wall seconds of the traced window. */
  windowS: number;
  /** Seconds of warm-up load it took the target to settle (with `settle`; else 0). */
  settledS: number;
  /** Requests the target was sent before the traced run, since it started (or was attached
   *  to): a cache filling from a cold start fills along them. */
  sentBefore: number;
  /** The target's processes, main process first, with their threads at the end of the run. */
  processes: { pid: number; tids: number[] }[];
  /** How many processes the target had when this observation began, before its warm-up: a
   *  pool's size at rest where it is the first. */
  processesBefore: number;
  /** The same late in the traced run (at 80% of it), its connections open: the threads and
   *  processes a server starts for each connection, which may be gone by its end. */
  during: { pid: number; tids: number[] }[];
}

/** How often the CPU time of the target's threads is read while a load runs. */
const CPU_SAMPLE_MS = 200;

/** Samples of CPU time to one of the threads' tick counts (cpuTracker). */
const TICK_EVERY = 5;

/** CPU time of the target's threads from now until `stop`: each thread's time read every
 *  CPU_SAMPLE_MS and once at the end, the last reading of a thread that has ended kept (a
 *  server's thread or process for one connection ends with it, as a load closes them); with
 *  the share of it in the kernel, from the same threads' tick counts. */
function cpuTracker(pidsNow: () => number[]): { stop(): { ns: number; sysShare: number | null } } {
  const last = new Map<number, number>();
  const ticks = new Map<number, { user: number; sys: number }>();
  let n = 0;
  const sample = (all = false) => {
    const pids = pidsNow();
    for (const [t, ns] of cpuNs(pids).byThread) last.set(t, ns);
    // The ticks, a share, at a fifth of the pace (each read is the target's machine's time too).
    if (all || n++ % TICK_EVERY === 0) for (const [t, x] of cpuTicks(pids)) ticks.set(t, x);
  };
  sample(true);
  const base = new Map(last);
  const baseTicks = new Map(ticks);
  const timer = setInterval(sample, CPU_SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      sample(true);
      let ns = 0;
      for (const [t, v] of last) ns += v - (base.get(t) ?? 0);
      let user = 0;
      let sys = 0;
      for (const [t, x] of ticks) {
        user += x.user - (baseTicks.get(t)?.user ?? 0);
        sys += x.sys - (baseTicks.get(t)?.sys ?? 0);
      }
      return { ns, sysShare: user + sys > 0 ? sys / (user + sys) : null };
    },
  };
}

/** The target's socket bytes as a load's: received (the load's sent) and sent, scaled from
 *  every request of the traced run to the measured ones. */
export function socketBytes(trace: SyscallTrace, load: LoadResult): LoadResult['bytes'] {
  let inBytes = 0;
  let outBytes = 0;
  for (const e of trace.io) {
    if (!e.socket || e.bytes <= 0) continue;
    if (SOCKET_RECV_CALLS.has(e.call)) inBytes += e.bytes * e.count;
    else if (SOCKET_SEND_CALLS.has(e.call)) outBytes += e.bytes * e.count;
  }
  const share = load.requests / Math.max(1, load.sent);
  return { sent: inBytes * share, received: outBytes * share };
}

/** A count once it has held for STEADY_READS reads STEADY_MS apart (at most STEADY_MAX reads):
 *  a server forks its pool after its port opens (apache2's prefork had 7 of its 8 once). */
const STEADY_MS = 100;
const STEADY_READS = 5;
const STEADY_MAX = 50;

export async function steadyCount(count: () => number): Promise<number> {
  let last = count();
  for (let same = 1, k = 0; same < STEADY_READS && k < STEADY_MAX; k++) {
    await new Promise((r) => setTimeout(r, STEADY_MS));
    const n = count();
    same = n === last ? same + 1 : 1;
    last = n;
  }
  return last;
}

/** Preloads (untraced), then traces the target's system calls while twin-load drives it at
 *  `rate`. CPU time comes from schedstat before and after; with `threadCpu`, each thread's
 *  from an untraced run besides. */
export async function observe(
  target: RunningTarget,
  w: Workload,
  rate: number,
  opts: {
    trace: boolean;
    preload: boolean;
    settle?: boolean;
    threadCpu?: boolean;
    seed?: number;
    /** Trace the waits of a transaction's requests by place too (placeProbes). */
    places?: boolean;
  },
): Promise<Observation> {
  const processesBefore = await steadyCount(() => target.pids().length);
  if (opts.preload && w.preload) await preload(w, target.port);
  const settledS = opts.settle ? await settle(target, w, rate) : 0;
  const pids = target.pids();
  // A transaction's statements in turn: the waits inside each are told apart (serialized sections).
  const cycle = opts.places ? (transactionKinds(w)?.length ?? 0) : 0;
  const tracer = opts.trace ? await startTracer(pids, cycle) : null;
  const sentBefore = sentSoFar(target);
  const t0 = Date.now();
  const cpu = cpuTracker(() => target.pids());
  // Which descriptors are sockets, and which processes and threads serve: read while the
  // load's connections are open, late enough that a pool forking for them has caught up.
  const fds = new Map<number, ReturnType<typeof fdClasses>>();
  let during: Observation['during'] = [];
  const snap = setTimeout(
    () => {
      const now = target.pids();
      now.forEach((p) => fds.set(p, fdClasses(p)));
      during = now.map((pid) => ({ pid, tids: tasks(pid) })).filter((p) => p.tids.length > 0);
    },
    (1 + w.duration * 0.8) * 1000,
  );
  let load: LoadResult;
  let cpuSum = 0;
  let sysShare: number | null = null;
  try {
    load = await drive(target, w, { rate, duration: w.duration, warmup: 1, seed: opts.seed });
  } finally {
    clearTimeout(snap);
    ({ ns: cpuSum, sysShare } = cpu.stop());
  }
  const processes = pids.map((pid) => ({ pid, tids: tasks(pid) }));
  if (during.length === 0) during = processes;
  // Threads counted with the connections open (a thread per connection ends with it).
  const threads = during.reduce((a, p) => a + p.tids.length, 0);
  const trace = tracer ? await tracer.stop() : null;
  if (trace) markFds(trace, fds);
  // A driver of the target's own counts no bytes: the tracer's, over the whole traced run.
  if (trace && w.driver.name !== 'twin-load') load = { ...load, bytes: socketBytes(trace, load) };
  const windowS = trace ? trace.windowS : (Date.now() - t0) / 1000;
  if (!opts.threadCpu)
    return {
      load,
      trace,
      cpuNs: cpuSum,
      sysShare,
      threads,
      threadNsPerSec: new Map(),
      untraced: null,
      windowS,
      settledS,
      sentBefore,
      processes,
      processesBefore,
      during,
    };
  // Each thread's CPU time over each whole second of the run, its median kept (per second).
  const samples = [{ at: Date.now(), cpu: cpuNs(pids).byThread }];
  let untraced: LoadResult | null = null;
  const tick = setInterval(() => samples.push({ at: Date.now(), cpu: cpuNs(pids).byThread }), 1000);
  try {
    untraced = await drive(target, w, { rate, duration: THREAD_CPU_S, warmup: 0, seed: 11 });
  } finally {
    clearInterval(tick);
  }
  const tids = [...samples[samples.length - 1].cpu.keys()];
  const threadNsPerSec = new Map(
    tids.map((t) => [
      t,
      median(
        samples
          .slice(1)
          .map(
            (s, i) => ((s.cpu.get(t) ?? 0) - (samples[i].cpu.get(t) ?? 0)) / ((s.at - samples[i].at) / 1000),
          ),
      ),
    ]),
  );
  return {
    load,
    trace,
    cpuNs: cpuSum,
    sysShare,
    threads,
    threadNsPerSec,
    untraced,
    windowS,
    settledS,
    sentBefore,
    processes,
    processesBefore,
    during,
  };
}
