import type { Workload } from '../model/index.js';
import { runLoad, type LoadResult } from '../measure/loadgen.js';
import { markSockets, startTracer, type SyscallTrace } from './bpftrace.js';
import { cpuNs, socketFds, tasks } from './proc.js';
import type { RunningTarget } from './target.js';

/** Seconds of untraced load at a rate before it is traced. */
export const SETTLE_S = 3;

/** What one traced load run on a running target saw. */
export interface Observation {
  load: LoadResult;
  trace: SyscallTrace | null;
  /** CPU nanoseconds of the target's processes during the run (warm-up included). */
  cpuNs: number;
  threads: number;
  /** CPU nanoseconds of each thread (by TID) in the same window, and that window in seconds. */
  threadNs: Map<number, number>;
  cpuWindowS: number;
  /** Wall seconds of the traced window. */
  windowS: number;
  /** The target's processes, main process first, with their threads at the end of the run. */
  processes: { pid: number; tids: number[] }[];
}

/** Preloads (untraced), then traces the target's system calls while twin-load drives it at
 *  `rate`. CPU time comes from schedstat before and after. */
export async function observe(target: RunningTarget, w: Workload, rate: number, opts: { trace: boolean; preload: boolean; settleS?: number }): Promise<Observation> {
  if (opts.preload && w.preload) await runLoad(w, target.port, { rate: 1, duration: 0.001, warmup: 0, preload: true, maxRequests: 1 });
  // Servers adapt to their load (background threads that poll more often when busy, caches
  // that warm): an untraced run at the same rate first lets them settle.
  if (opts.settleS) await runLoad(w, target.port, { rate, duration: opts.settleS, warmup: 0, seed: 7 });
  const pids = target.pids();
  const tracer = opts.trace ? await startTracer(pids) : null;
  const t0 = Date.now();
  const cpu0 = cpuNs(pids);
  // Which descriptors are sockets: read while the load's connections are open, half-way.
  const sockets = new Map<number, Set<number>>();
  const snap = setTimeout(() => pids.forEach((p) => sockets.set(p, socketFds(p))), (1 + w.duration / 2) * 1000);
  let load;
  try {
    load = await runLoad(w, target.port, { rate, duration: w.duration, warmup: 1 });
  } finally {
    clearTimeout(snap);
  }
  const cpu1 = cpuNs(pids);
  const cpuWindowS = (Date.now() - t0) / 1000;
  const threadNs = new Map([...cpu1.byThread].map(([t, ns]) => [t, ns - (cpu0.byThread.get(t) ?? 0)]));
  const processes = pids.map((pid) => ({ pid, tids: tasks(pid) }));
  const trace = tracer ? await tracer.stop() : null;
  if (trace) markSockets(trace, sockets);
  return { load, trace, cpuNs: cpu1.ns - cpu0.ns, threads: cpu1.threads, threadNs, cpuWindowS, windowS: trace ? trace.windowS : cpuWindowS, processes };
}
