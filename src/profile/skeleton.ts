import {
  IDLE_BACKGROUND,
  OWN_CONNECTION,
  SOCKET_RECV_CALLS,
  SOCKET_SEND_CALLS,
  SYNC_CALLS,
  type SizeBins,
  type Skeleton,
} from '../model/index.js';
import type { SyscallTrace } from '../collect/bpftrace.js';
import type { Observation } from '../collect/observe.js';

const WAITS = ['epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'poll', 'ppoll', 'select', 'pselect6'];
const SLEEPS: Record<string, Skeleton['background'][number]['sleep']> = {
  nanosleep: 'nanosleep',
  clock_nanosleep: 'clock_nanosleep',
  futex: 'futex',
  epoll_wait: 'epoll_wait',
  epoll_pwait: 'epoll_wait',
  poll: 'poll',
  ppoll: 'poll',
  select: 'select',
  pselect6: 'select',
};

export interface ThreadActivity {
  pid: number;
  tid: number;
  calls: Map<string, number>;
  total: number;
  socketIo: number;
  accepts: number;
  /** CPU nanoseconds a second on the thread (`Observation.threadNsPerSec`). */
  cpuNsPerSec: number;
  /** Its reads and writes of regular files (successful ones), by call and size, and its
   *  syncs by call. */
  disk: Map<string, SizeBins>;
}

/** Every thread seen at the end of the run or at 80% of it (its connections open). */
export function threadActivity(o: Observation): ThreadActivity[] {
  const trace: SyscallTrace = o.trace ?? { byThread: new Map(), io: [], places: [] };
  const out: ThreadActivity[] = [];
  const seen = new Set<number>();
  for (const { pid, tids } of [...o.processes, ...(o.during ?? [])]) {
    for (const tid of tids) {
      if (seen.has(tid)) continue;
      seen.add(tid);
      const calls = trace.byThread.get(tid)?.calls ?? new Map<string, number>();
      const total = [...calls.values()].reduce((a, b) => a + b, 0);
      const socketIo = trace.io.filter((e) => e.tid === tid && e.socket).reduce((a, e) => a + e.count, 0);
      const accepts = (calls.get('accept') ?? 0) + (calls.get('accept4') ?? 0);
      const cpuNsPerSec = o.threadNsPerSec.get(tid) ?? 0;
      out.push({ pid, tid, calls, total, socketIo, accepts, cpuNsPerSec, disk: diskOf(trace, tid, calls) });
    }
  }
  return out;
}

/** A thread's disk calls: its reads and writes of regular files by size, its syncs. */
function diskOf(trace: SyscallTrace, tid: number, calls: Map<string, number>): Map<string, SizeBins> {
  const sized = new Map<string, Map<number, number>>();
  for (const e of trace.io) {
    if (e.tid !== tid || !e.file || e.bytes <= 0) continue;
    const m = sized.get(e.call) ?? new Map<number, number>();
    m.set(e.bytes, (m.get(e.bytes) ?? 0) + e.count);
    sized.set(e.call, m);
  }
  const out = new Map<string, SizeBins>();
  for (const [call, m] of sized)
    out.set(
      call,
      [...m.entries()].sort((a, b) => a[0] - b[0]),
    );
  for (const call of SYNC_CALLS) if (calls.get(call)) out.set(call, [[0, calls.get(call)!]]);
  return out;
}

/** Size bins summed: each size's count over every list, by size. */
export function mergeBins(lists: Iterable<SizeBins>): SizeBins {
  const m = new Map<number, number>();
  for (const bins of lists) for (const [size, n] of bins) m.set(size, (m.get(size) ?? 0) + n);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

/** A background thread's disk calls a request, from its calls in every window it was traced in
 *  and the requests sent in them: a database's writers write seldom, a few times a window. */
export function diskPerRequest(
  seen: { a: ThreadActivity; sent: number }[],
): Skeleton['background'][number]['disk'] {
  const sent = Math.max(
    1,
    seen.reduce((n, x) => n + x.sent, 0),
  );
  const calls = [...new Set(seen.flatMap(({ a }) => [...a.disk.keys()]))].sort();
  return calls
    .map((name) => {
      const sizes = mergeBins(seen.map(({ a }) => a.disk.get(name) ?? []));
      const n = sizes.reduce((a, [, k]) => a + k, 0);
      return { name, perReq: round(n / sent, 6), ...(SYNC_CALLS.includes(name) ? {} : { sizes }) };
    })
    .filter((r) => r.perReq > 0);
}

/** Serving threads: those that carry at least 2% of the socket I/O, or a quarter of the
 *  mean of the threads that carry any (a thread per connection, on many connections). */
export function servingThreads(acts: ThreadActivity[]): ThreadActivity[] {
  const io = acts.reduce((a, t) => a + t.socketIo, 0);
  const carrying = acts.filter((t) => t.socketIo > 0).length;
  const bar = Math.min(0.02 * io, (0.25 * io) / Math.max(1, carrying));
  return acts.filter((t) => io > 0 && t.socketIo >= bar);
}

/** Bins of socket I/O sizes (successful calls) of the given threads and calls. */
export function ioSizes(trace: SyscallTrace, tids: Set<number>, calls: Set<string>, socket = true): SizeBins {
  const m = new Map<number, number>();
  for (const e of trace.io) {
    if (!tids.has(e.tid) || e.socket !== socket || !calls.has(e.call) || e.bytes <= 0) continue;
    m.set(e.bytes, (m.get(e.bytes) ?? 0) + e.count);
  }
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

function dominant(
  trace: SyscallTrace,
  tids: Set<number>,
  family: ReadonlySet<string>,
): { name: string; count: number } {
  const m = new Map<string, number>();
  for (const e of trace.io)
    if (tids.has(e.tid) && e.socket && family.has(e.call)) m.set(e.call, (m.get(e.call) ?? 0) + e.count);
  const best = [...m.entries()].sort((a, b) => b[1] - a[1])[0];
  return best ? { name: best[0], count: [...m.values()].reduce((a, b) => a + b, 0) } : { name: '', count: 0 };
}

/** The process and thread model and the network model, from which threads did what. */
export function inferSkeleton(o: Observation, more: Observation[] = []): Skeleton {
  const trace = o.trace ?? { byThread: new Map(), io: [], places: [] };
  const acts = threadActivity(o);
  const serving = servingThreads(acts);
  const servingTids = new Set(serving.map((t) => t.tid));
  const mainPid = o.processes[0].pid;
  const requests = Math.max(1, o.load.sent);

  const waitCalls = WAITS.map((n) => serving.reduce((a, t) => a + (t.calls.get(n) ?? 0), 0));
  const waitIdx = waitCalls.findIndex((c) => c > 0);
  const io: Skeleton['io'] =
    waitIdx < 0
      ? 'blocking'
      : WAITS[waitIdx].startsWith('epoll')
        ? 'epoll'
        : WAITS[waitIdx].includes('poll')
          ? 'poll'
          : 'select';

  const { networkModel, workers, spare, threadsPerProcess } = networkModelOf(o, acts, serving, io);
  const recv = dominant(trace, servingTids, SOCKET_RECV_CALLS);
  const receivesFirst = io === 'epoll' && OWN_CONNECTION.has(networkModel);
  const waits = waitIdx < 0 ? 0 : waitCalls[waitIdx];
  const send = dominant(trace, servingTids, SOCKET_SEND_CALLS);
  const recvCall = (recv.name === 'readv' ? 'read' : recv.name || 'read') as Skeleton['recvCall'];
  const sendCall = (send.name || 'write') as Skeleton['sendCall'];

  const role = (t: ThreadActivity): Skeleton['threads'][number]['role'] => {
    if (servingTids.has(t.tid)) return networkModel === 'event-loop' ? 'event-loop' : 'worker';
    if (t.accepts > 0 && t.tid !== t.pid) return 'acceptor';
    if (t.tid === t.pid) return 'main';
    if (t.accepts > 0) return 'acceptor';
    return 'background';
  };
  const pidsSeen = [...new Set(acts.map((t) => t.pid))];
  const threads = acts.map((t) => ({
    process: pidsSeen.indexOf(t.pid),
    role: role(t),
    syscallsPerSec: round(t.total / Math.max(o.windowS, 1e-3), 3),
  }));

  // The clone's main process holds main + (pool: workers) + background threads. Beside a
  // process per connection, the processes that serve none and were there before the load (a
  // database's checkpointer and WAL writer) are background threads in processes of their own.
  const mainThreads = acts.filter((t) => t.pid === mainPid);
  const servingPids = new Set(serving.map((t) => t.pid));
  const own = new Set(
    networkModel === 'process-per-connection'
      ? o.processes
          .filter((p) => p.pid !== mainPid && p.tids.length > 0 && !servingPids.has(p.pid))
          .map((p) => p.pid)
      : [],
  );
  const others = [
    ...mainThreads.filter((t) => t.tid !== t.pid && !servingTids.has(t.tid)),
    ...acts.filter((t) => own.has(t.pid) && !servingTids.has(t.tid)),
  ];
  // Each background thread at every load it was traced at, lowest first.
  const all = [{ x: o, acts }, ...more.map((x) => ({ x, acts: threadActivity(x) }))].sort(
    (a, b) => rateOf(a.x) - rateOf(b.x),
  );
  const background = others.map((t) => ({ ...backgroundAcross(t), ownProcess: own.has(t.pid) }));
  function backgroundAcross(t: ThreadActivity): Skeleton['background'][number] {
    const seen = all.flatMap(({ x, acts }) => {
      const a = acts.find((q) => q.tid === t.tid);
      return a ? [{ a, x }] : [];
    });
    const disk = diskPerRequest(seen.map(({ a, x }) => ({ a, sent: x.load.sent })));
    if (seen.length < 2) return { ...backgroundOf(t, o.windowS), disk };
    const [lo, hi] = [seen[0], seen[seen.length - 1]];
    const b = coupledBackground(lo.a, lo.x, hi.a, hi.x);
    if (b.sleep === 'idle') return { ...b, disk };
    return { ...b, disk, byLoad: seen.map(({ a, x }) => backgroundAt(a, x.windowS, x.load.sent)) };
  }

  return {
    processes: pidsSeen.length,
    threads,
    networkModel,
    io,
    workers,
    spare,
    threadsPerProcess,
    recvCall,
    // A connection's own thread or process that waits in epoll receives first: its receives
    // that found nothing are those before each wait, not a receive until EAGAIN.
    recvUntilEagain: (recv.count - (receivesFirst ? waits : 0)) / requests >= 1.5,
    sendCall,
    background,
    locks: [], // fitted apart (fitLocks): they need the transaction's statement kinds
  };
}

/** The process and thread model, from which threads and processes carry the connections and
 *  how they wait. Serving threads block where they make no wait call, or wait in `poll` or
 *  `select` on one socket each (Apache's prefork between keep-alive requests). Blocking serving
 *  threads in the main process are a thread per connection; blocking serving processes other
 *  than the main one are a process per connection where the main process accepts (it forks for
 *  each), else a pool that accepts itself. `workers`: the pool's threads or processes (a
 *  process pool's before any load, where `o` is the first observation; 1 where it is a count
 *  per connection); `spare`: the idle processes a pool that grew under the load kept beside
 *  its busy ones. */
export function networkModelOf(
  o: Observation,
  acts: ThreadActivity[],
  serving: ThreadActivity[],
  io: Skeleton['io'],
): { networkModel: Skeleton['networkModel']; workers: number; spare: number; threadsPerProcess: number } {
  const mainPid = o.processes[0].pid;
  const servingPids = new Set(serving.map((t) => t.pid));
  const mainAccepts = acts.some((t) => t.pid === mainPid && t.accepts > 0);
  const children = new Set(acts.filter((t) => t.pid !== mainPid).map((t) => t.pid)).size;
  const blocking = io === 'blocking' || (io !== 'epoll' && serving.every((t) => socketsOf(o, t.tid) <= 1));
  const fixed = (networkModel: Skeleton['networkModel'], workers: number, threadsPerProcess = 0) => ({
    networkModel,
    workers,
    spare: 0,
    threadsPerProcess,
  });
  if (servingPids.size > 1 || (servingPids.size === 1 && !servingPids.has(mainPid))) {
    // The main process accepts and each serving process has one connection: forked for it,
    // whether it blocks or waits in epoll (PostgreSQL's backends).
    const oneEach = serving.every((t) => socketsOf(o, t.tid) <= 1);
    if (mainAccepts && !servingPids.has(mainPid) && (blocking || oneEach))
      return fixed('process-per-connection', 1);
    if (!blocking) return fixed('prefork', Math.max(1, children));
    // Serving processes of several threads: a main thread and a listener beside the rest.
    const most = Math.max(...[...servingPids].map((p) => acts.filter((t) => t.pid === p).length));
    if (most > 1) return fixed('process-threads', Math.max(1, children), Math.max(1, most - 2));
    const before = Math.max(1, (o.processesBefore ?? o.processes.length) - 1);
    const idle = children - servingPids.size;
    return {
      networkModel: 'process-pool',
      workers: before,
      spare: children > before ? Math.max(0, idle) : 0,
      threadsPerProcess: 0,
    };
  }
  const mainServes = serving.some((t) => t.tid === mainPid);
  if (blocking && serving.length > 0 && (serving.length > 1 || !mainServes))
    return fixed('thread-per-connection', 1);
  if (serving.length <= 1) return fixed('event-loop', 1);
  return fixed('worker-pool', serving.length);
}

/** The sockets that carry a tenth or more of a thread's socket I/O calls (a connection it
 *  served for a moment, as the one that found the port open, does not count). */
function socketsOf(o: Observation, tid: number): number {
  const calls = new Map<number, number>();
  for (const e of o.trace?.io ?? [])
    if (e.tid === tid && e.socket) calls.set(e.fd, (calls.get(e.fd) ?? 0) + e.count);
  const total = [...calls.values()].reduce((a, b) => a + b, 0);
  return [...calls.values()].filter((n) => n >= 0.1 * total).length;
}

/** Requests a second: `sent` in `windowS` seconds. */
const rateIn = (sent: number, windowS: number) => sent / Math.max(windowS, 1e-3);
const rateOf = (o: Observation) => rateIn(o.load.sent, o.windowS);

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A background thread: its dominant sleeping call gives the wake-up period; the rest of its
 *  calls are spread over its wake-ups; its CPU time a second is what it spent awake (its
 *  work and the kernel's wake-ups). */
export function backgroundOf(t: ThreadActivity, windowS: number): Skeleton['background'][number] {
  let best = '';
  let wakes = 0;
  for (const [name, n] of t.calls) if (name in SLEEPS && n > wakes) [best, wakes] = [name, n];
  if (!best || wakes < 2) return { ...IDLE_BACKGROUND };
  // Its disk calls are replayed as such (`disk`), not as cheap calls of each wake-up.
  let disk = 0;
  for (const bins of t.disk.values()) for (const [, n] of bins) disk += n;
  return {
    sleep: SLEEPS[best],
    periodUs: Math.max(1, Math.round((windowS * 1e6) / wakes)),
    callsPerWake: Math.max(0, Math.round((t.total - wakes - disk) / wakes)),
    wakesPerReq: 0,
    ownProcess: false,
    cpuNsPerSec: Math.round(t.cpuNsPerSec),
    cpuNsPerReq: 0,
    byLoad: [],
    disk: [],
  };
}

/** A background thread seen at two loads: its wake rate and its CPU time a second, each as a
 *  line in the request rate, wakes/s = base + wakesPerReq * requests/s and CPU ns/s =
 *  cpuNsPerSec + cpuNsPerReq * requests/s (each term at least zero). */
export function coupledBackground(
  lo: ThreadActivity,
  oLo: Observation,
  hi: ThreadActivity,
  oHi: Observation,
): Skeleton['background'][number] {
  const a = backgroundOf(lo, oLo.windowS);
  const b = backgroundOf(hi, oHi.windowS);
  if (a.sleep === 'idle' && b.sleep === 'idle') return a;
  const sleep = a.sleep !== 'idle' ? a.sleep : b.sleep;
  const hz = (x: Skeleton['background'][number]) =>
    x.sleep === 'idle' || x.periodUs === 0 ? 0 : 1e6 / x.periodUs;
  const r1 = oLo.load.sent / oLo.windowS;
  const r2 = oHi.load.sent / oHi.windowS;
  let slope = r2 > r1 * 1.2 ? (hz(b) - hz(a)) / (r2 - r1) : 0;
  if (slope < 0.001) slope = 0;
  const base = Math.max(0, hz(a) - slope * r1);
  if (base < 0.1 && slope === 0) return { ...IDLE_BACKGROUND };
  const cpu = line(r1, a.cpuNsPerSec, r2, b.cpuNsPerSec);
  return {
    sleep,
    periodUs: base >= 0.1 ? Math.round(1e6 / base) : 0,
    callsPerWake: a.sleep !== 'idle' ? a.callsPerWake : b.callsPerWake,
    ownProcess: false,
    wakesPerReq: Math.round(slope * 1e5) / 1e5,
    cpuNsPerSec: Math.round(cpu.base),
    cpuNsPerReq: Math.round(cpu.slope),
    byLoad: [],
    disk: [],
  };
}

/** A background thread at one load (`sent` requests in `windowS` seconds): the request rate,
 *  its wake-ups a second and its CPU time a second. */
export function backgroundAt(t: ThreadActivity, windowS: number, sent: number) {
  const q = backgroundOf(t, windowS);
  const hz = q.sleep === 'idle' || q.periodUs === 0 ? 0 : 1e6 / q.periodUs;
  return {
    rps: round(rateIn(sent, windowS), 1),
    hz: round(hz, 2),
    cpuNsPerSec: Math.round(t.cpuNsPerSec),
  };
}

/** The line through (x1, y1) and (x2, y2), its slope and its value at 0 each at least zero;
 *  it goes through (x1, y1) wherever a term is held at zero. */
export function line(x1: number, y1: number, x2: number, y2: number): { base: number; slope: number } {
  const slope = x2 > x1 * 1.2 ? Math.max(0, (y2 - y1) / (x2 - x1)) : 0;
  if (y1 - slope * x1 >= 0) return { base: y1 - slope * x1, slope };
  return { base: 0, slope: y1 / x1 };
}
