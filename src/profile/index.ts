import { cpus, arch, release } from 'node:os';
import {
  OWN_CONNECTION,
  PROFILE_SCHEMA_VERSION,
  Profile,
  TwinError,
  parseWith,
  type AloneCpu,
  type PortableCpu,
  type Skeleton,
  type SyscallRate,
  type Workload,
} from '../model/index.js';
import { totalErrors, type LoadResult } from '../collect/loadgen.js';
import { recordReplies, STARTUP_OP } from '../collect/pgwire.js';
import { transactionKinds } from '../collect/pgbench.js';
import { fitLocks, placeOf, splitByType, typeReplay, withoutLatchCalls } from './places.js';
import { callHistory, splitReplay } from './history.js';
import { attachTarget, launchTarget, type LaunchSpec } from '../collect/target.js';
import { observe, type Observation } from '../collect/observe.js';
import { inferSkeleton, ioSizes, mergeBins } from './skeleton.js';
import {
  afterCount,
  aloneMade,
  mapsOf,
  replayCounts,
  servingTids,
  SOCKET_IO,
  turnMarks,
} from './replayed.js';
import { measureEach, measurePortable, ORIGINAL_PAIRS, type Linearity } from '../collect/cpu.js';
import { requireLinear, requireSteadyCurves } from './curves.js';

/** Calls the clone's skeleton makes by itself: never replayed. */
const SKELETON_CALLS = new Set([
  'epoll_wait',
  'epoll_pwait',
  'epoll_pwait2',
  'poll',
  'ppoll',
  'select',
  'pselect6',
  'accept',
  'accept4',
]);
/** Replay rates below this many calls per request are dropped (connection set-up and such). */
const MIN_RATE = 0.01;

export interface ProfileOptions {
  name: string;
  port?: number;
  /** Attach to this running process (on `port`) instead of starting the target. */
  attachPid?: number;
  progress?: (msg: string) => void;
}

/** Kernel work per request: every call by name (all threads), and the serving threads' calls
 *  beyond the skeleton's with their rates and sizes. The replayed calls' rates and sizes are
 *  pooled over every traced window (`more`, the other loads'): a database's file calls follow
 *  its cache's history as much as its load (PostgreSQL's bytes written a statement went 1,273,
 *  1,239, 1,235 over its first three windows), and a rate from the first window alone keeps
 *  that window's draw. */
export function kernelWork(
  o: Observation,
  skeletonRecv: string,
  skeletonSend: string,
  more: Observation[] = [],
): Profile['kernel'] {
  const trace = o.trace!;
  const sent = Math.max(1, o.load.sent);
  const byName: Record<string, number> = {};
  let total = 0;
  for (const t of trace.byThread.values()) {
    for (const [name, n] of t.calls) {
      byName[name] = (byName[name] ?? 0) + n / sent;
      total += n;
    }
  }
  // Each window with its serving threads.
  const windows = [o, ...more.filter((x) => x.trace)].map((x) => ({ x, tids: servingTids(x) }));
  const tids = windows[0].tids;
  const counts = new Map<string, number>();
  const peak = new Map<string, number>(); // each call's highest rate in a window
  for (const w of windows)
    for (const [name, n] of replayCounts(w.x.trace!, w.tids)) {
      counts.set(name, (counts.get(name) ?? 0) + n);
      peak.set(name, Math.max(peak.get(name) ?? 0, n / Math.max(1, w.x.load.sent)));
    }
  const pooled = Math.max(
    1,
    windows.reduce((a, w) => a + w.x.load.sent, 0),
  );
  const replay: Profile['kernel']['replay'] = [];
  for (const [name, n] of [...counts.entries()].sort()) {
    const perReq = n / pooled;
    // A call made at the rate in some window is kept for the history's fit (a cache's cold
    // reads, all in the first window), which drops it again where it finds no part to keep.
    if (SKELETON_CALLS.has(name) || Math.max(perReq, peak.get(name)!) < MIN_RATE) continue;
    const maps = name === 'mmap' ? mapsOf(windows) : null;
    const sizes = SOCKET_IO.has(name)
      ? mergeBins(windows.map((w) => ioSizes(w.x.trace!, w.tids, new Set([name]), false)))
      : maps?.sizes;
    const after = Math.min(1, afterCount(windows, name, skeletonSend) / Math.max(1, n));
    const marks = turnMarks(windows, name);
    replay.push({
      name,
      perReq: Math.round(perReq * 1e4) / 1e4,
      ...(sizes && sizes.length ? { sizes } : {}),
      ...(maps && maps.sizes.length ? { fileShare: maps.fileShare } : {}),
      ...(after > 0 ? { afterShare: Math.round(after * 1e4) / 1e4 } : {}),
      ...(marks !== null ? { turnMarks: marks } : {}),
    });
  }
  return {
    syscallsPerReq: total / sent,
    byName: Object.fromEntries(Object.entries(byName).map(([k, v]) => [k, Math.round(v * 1e4) / 1e4])),
    replay,
    recvSizes: ioSizes(
      trace,
      tids,
      new Set([skeletonRecv, skeletonRecv === 'read' ? 'readv' : skeletonRecv]),
    ),
    sendSizes: ioSizes(trace, tids, new Set([skeletonSend])),
  };
}

/** Request types by protocol verb, from every profiled run's requests: load entries of the
 *  same verb (say, GETs of two paths) are one type, their response sizes merged. Every run
 *  counts so that the sizes are the data set's, not one short sample's: a clone validated
 *  on another request sequence meets the original's population of sizes. */
export function requestTypes(loads: LoadResult[]): Profile['requests'] {
  const ops = loads.flatMap((l) => l.ops);
  const total = ops.reduce((a, op) => a + op.count, 0);
  type Entry = { count: number; reqBytes: number; sizes: Map<number, number>; keys: number[][] | null };
  const byOp = new Map<string, Entry>();
  for (const op of ops) {
    if (op.count === 0) continue;
    let e = byOp.get(op.op);
    if (!e) byOp.set(op.op, (e = { count: 0, reqBytes: 0, sizes: new Map(), keys: [] }));
    e.count += op.count;
    e.reqBytes += op.req_bytes;
    for (const [s, c] of op.resp_sizes) e.sizes.set(s, (e.sizes.get(s) ?? 0) + c);
    e.keys = e.keys && op.key_sizes ? [...e.keys, op.key_sizes] : null;
  }
  // A type no run saw the replies of (a driver's own counts no sizes) is left out.
  return [...byOp.entries()]
    .filter(([, e]) => e.sizes.size > 0)
    .map(([op, e]) => {
      // One size for every response (a fixed reply) needs no table.
      const keySizes = e.keys && e.sizes.size > 1 && staticKeySizes(e.keys);
      return {
        op,
        share: e.count / total,
        requestBytesMean: e.reqBytes / e.count,
        responseSizes: [...e.sizes.entries()].sort((a, b) => a[0] - b[0]),
        ...(keySizes ? { keySizes } : {}),
      };
    });
}

/** The share of a request type's measured keys that may have answered with more than one
 *  size (an error reply, a value set anew in between) for its sizes still to count by key. */
export const VARIED_KEYS = 0.01;

/** Each key's one size over runs of twin-load (its `key_sizes`: 0 not measured, -1 more
 *  than one size), 0 where it varied; null where over VARIED_KEYS of the measured keys
 *  varied (the size follows the request sequence, not the key) or none was measured. */
export function staticKeySizes(runs: number[][]): number[] | null {
  const n = Math.max(0, ...runs.map((r) => r.length));
  const out = new Array<number>(n).fill(0);
  let varied = 0;
  let seen = 0;
  for (let k = 0; k < n; k++) {
    const sizes = new Set(runs.map((r) => r[k] ?? 0).filter((s) => s !== 0));
    if (!sizes.size) continue;
    seen++;
    const [only] = sizes;
    if (sizes.size > 1 || only < 0) varied++;
    else out[k] = only;
  }
  return seen > 0 && varied <= VARIED_KEYS * seen ? out : null;
}

/** Seconds of the relayed run that tallies a pgbench workload's replies. */
const RELAY_S = 3;

/** How the profile's runs are traced: every call, the waits by place in a transaction, and each
 *  thread's CPU time untraced after. Validation traces the calls alone: the places' probes
 *  double the probes and their maps (1.5 GiB), and the first run after them, of either side,
 *  had its p99 at 18-63 ms where the others' were 3-6 ms (postgres-tpcb at 1,960 statements
 *  a second, four tries; without them 5 ms). */
const TRACED = { trace: true, settle: true, threadCpu: true, places: true } as const;

/** How many times the workload's connections the original is measured on again, to tell
 *  what of its work follows the connection count: four times moves a per-connection line's
 *  reuse distance (the lines of about as many requests as there are connections) past at
 *  least one of the curve's sizes, an octave apart, even where a footprint grows more slowly
 *  than the requests in it. */
export const CONNECTION_FACTOR = 4;

/** Fails the profile where the target failed or answered nothing. */
function answered(o: Observation): void {
  const errors = totalErrors(o.load);
  if (errors > 0)
    throw new TwinError(
      `the target failed ${errors} of ${o.load.sent} requests while profiled (${JSON.stringify(o.load.errors)}): check the workload's protocol and requests`,
    );
  if (o.load.requests === 0)
    throw new TwinError('the target answered no request while profiled: check the workload');
}

/** The replayed calls, each split into its parts (a request's, a connection's, a cold
 *  cache's) by the traced windows, those made less than MIN_RATE a request left out. */
function replayedCalls(o: Observation, more: Observation[], replay: SyscallRate[], connections: number) {
  const history = [o, ...more]
    .filter((x) => x.trace)
    .map((x) => ({
      sent: x.load.sent,
      before: x.sentBefore,
      counts: replayCounts(x.trace!, servingTids(x)),
    }));
  return splitReplay(replay, callHistory(history, connections)).filter(
    (c) => c.perReq >= MIN_RATE || c.perConn || c.cold,
  );
}

/** The workload of one request type: its entries alone, their shares as they were. */
export function aloneWorkload(w: Workload, op: string): Workload {
  const requests = w.requests.filter((r) => r.op.toLowerCase() === op.toLowerCase());
  if (!requests.length) throw new TwinError(`no request of the workload is a ${op}: check its requests`);
  return { ...w, requests };
}

/** The workload's request types where twin-load sends two or more (a driver's own mix is
 *  its own), each once by its first spelling. */
export function loadTypes(w: Workload): string[] {
  if (w.driver.name !== 'twin-load') return [];
  const ops = [...new Map(w.requests.map((r) => [r.op.toLowerCase(), r.op])).values()];
  return ops.length > 1 ? ops : [];
}

/** What a request type's body share is computed from (Profile's AloneCpu). */
const aloneCpu = (c: PortableCpu): AloneCpu => ({
  insnsPerReq: c.insnsPerReq,
  dataCurve: c.dataCurve,
  codeCurve: c.codeCurve,
  conflict: c.conflict,
  branchMissesPerReq: c.branchMissesPerReq,
});

/** Profiles a target under a workload: one traced real run at the lowest load, then two
 *  Valgrind runs for the CPU counters. */
export async function profileTarget(
  w: Workload,
  spec: LaunchSpec | null,
  opts: ProfileOptions,
): Promise<Profile> {
  const say = opts.progress ?? (() => {});
  const rate = Math.min(...w.loads);
  say(`starting the target and tracing it at ${rate} requests/s`);
  if (!spec)
    throw new TwinError(
      'the Valgrind runs start their own instance of the target: give its command after -- or as `command` in the workload file',
    );
  if (opts.attachPid !== undefined && opts.port === undefined)
    throw new TwinError('--pid needs --port, the port the running target listens on');
  const target =
    opts.attachPid !== undefined
      ? await attachTarget(opts.attachPid, opts.port!)
      : await launchTarget(spec, opts.port);
  let o: Observation;
  const more: Observation[] = [];
  const relayed: LoadResult[] = [];
  const alone: { op: string; x: Observation }[] = [];
  let skeleton: Skeleton;
  let kernel: Profile['kernel'];
  try {
    o = await observe(target, w, rate, { ...TRACED, preload: true });
    // Traced runs at the other loads tell how the background threads' wake-ups and CPU time
    // follow the load (threads that poll more often when busy, but not in proportion).
    for (const r of [...new Set(w.loads)].filter((x) => x > rate).sort((a, b) => a - b)) {
      say(`tracing it again at ${r} requests/s`);
      more.push(await observe(target, w, r, { ...TRACED, preload: false }));
    }
    answered(o);
    skeleton = inferSkeleton(o, more);
    kernel = kernelWork(o, skeleton.recvCall, skeleton.sendCall, more);
    // Each request type alone, traced at the lowest load: which types make the replayed calls,
    // where any call is left to split between them (memcached's and Redis's without a log: none).
    const ops = loadTypes(w);
    for (const op of ops.length && replayedCalls(o, more, kernel.replay, 0).length ? ops : []) {
      say(`tracing ${op} requests alone at ${rate} requests/s`);
      alone.push({
        op,
        x: await observe(target, aloneWorkload(w, op), rate, { trace: true, settle: true, preload: false }),
      });
    }
    // pgbench counts no bytes: each statement kind's replies, tallied on the way.
    if (w.driver.name === 'pgbench') {
      say(`tallying each statement kind's replies through a relay (${RELAY_S} s)`);
      relayed.push(await recordReplies(w, target.port, rate, RELAY_S));
    }
  } finally {
    await target.stop();
  }
  say(
    `under Valgrind: every cache, the branches and the mix (${ORIGINAL_PAIRS} twinreuse pairs), of ${w.valgrindRequests} and ${3 * w.valgrindRequests} requests, and a run of ${2 * w.valgrindRequests}`,
  );
  const linearity: Linearity = { halves: [], repeats: [], runs: 1 };
  const original = await measurePortable(spec, w, { mix: true, pairs: ORIGINAL_PAIRS, linearity });
  const perHalf = linearity.halves.map((h) => (h.Ir / w.valgrindRequests).toFixed(0)).join(' and ');
  say(`the halves of the measured requests: ${perHalf} instructions a request`);
  requireLinear(linearity, 2 * w.valgrindRequests);
  requireSteadyCurves(original, w.valgrindRequests);
  const requests = requestTypes([
    ...[o, ...more].flatMap((x) => [x.load, x.untraced ?? []].flat()),
    ...relayed,
  ]);
  // Calls that come with each connection, where the protocol opens one with a request of its
  // own (PostgreSQL's start-up: made there, not spread over the requests), and calls of a cache
  // filling from a cold start (made as the clone's fills).
  const startup = requests.find((r) => r.op === STARTUP_OP);
  kernel.replay = replayedCalls(o, more, kernel.replay, startup ? w.connections : 0);
  // Serialized sections and each kind's calls: the waits and calls inside a transaction's
  // statements, where a thread serves one connection at a time (an event loop's waits are its
  // idle ones, its requests interleaved).
  const kinds = transactionKinds(w);
  if (kinds && (OWN_CONNECTION.has(skeleton.networkModel) || skeleton.networkModel === 'process-threads')) {
    const traced = [o, ...more].filter((x) => x.trace);
    let windows = traced.map((x) => ({
      rps: x.load.target_rps,
      windowS: x.windowS,
      sent: x.load.sent,
      places: x.trace!.places,
    }));
    skeleton.locks = fitLocks(windows, kinds, requests);
    // Waits on latches: the clone's make the latch's calls, not replayed besides.
    const latched = skeleton.locks.filter((l) => l.wait === 'latch').map((l) => placeOf(kinds, l));
    ({ replay: kernel.replay, windows } = withoutLatchCalls(kernel.replay, windows, latched));
    // Each statement kind's own calls (the commit's fsync), as its places made them.
    const byType = typeReplay(kernel.replay, windows, kinds, requests);
    for (const r of requests) r.replay = byType?.get(r.op);
  } else if (alone.length) {
    const byType = splitByType(kernel.replay, aloneMade(alone, requests), requests);
    for (const r of requests) r.replay = byType?.get(r.op);
  }
  if (startup && kernel.replay.some((c) => c.perConn))
    startup.replay = (startup.replay ?? kernel.replay).map((c) => {
      const conn = kernel.replay.find((k) => k.name === c.name)?.perConn ?? 0;
      return { ...c, perReq: Math.round((c.perReq + conn) * 1e4) / 1e4 };
    });
  // Types measured alone need a load that sends one type alone: twin-load's.
  const types = requests.length > 1 && w.driver.name === 'twin-load' ? requests : [];
  const wider = { ...w, connections: w.connections * CONNECTION_FACTOR };
  say(
    `under Valgrind: ${types.map((r) => `${r.op} alone, `).join('')}the mix on ${wider.connections} connections (a twinreuse pair each)`,
  );
  const each = await measureEach(spec, [...types.map((r) => aloneWorkload(w, r.op)), wider]);
  types.forEach((r, i) => (r.alone = aloneCpu(each[i])));
  const moreConnections = { connections: wider.connections, cpu: aloneCpu(each[types.length]) };
  const profile: Profile = {
    schemaVersion: PROFILE_SCHEMA_VERSION,
    kind: 'twin-profile',
    service: { name: opts.name, protocol: w.protocol },
    source: {
      profiledAt: new Date().toISOString(),
      machine: { cpus: cpus().length, arch: arch(), kernel: release() },
      loadRps: rate,
      requests: o.load.sent,
      connections: w.connections,
      settledS: Math.round(o.settledS * 10) / 10,
    },
    skeleton,
    requests,
    kernel,
    perRequest: {
      cpuUsPerReq: o.cpuNs / 1000 / Math.max(1, o.load.sent),
      netBytesPerReq: (o.load.bytes.sent + o.load.bytes.received) / Math.max(1, o.load.requests),
      latencyP50Us: o.load.latency_us.p50,
    },
    body: { original, skeleton: null, moreConnections },
    knobs: {
      bodyInsnsPerReq: null,
      insnScale: 1,
      dataLoads: null,
      codeBlocks: null,
      dataLines: null,
      codeLines: null,
      crowd: null,
      codeCrowd: null,
      hardBranchesPerReq: null,
      mixOverhead: null,
    },
    tuning: [],
  };
  return parseWith(Profile, profile, 'the profile just made');
}
