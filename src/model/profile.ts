import { z } from 'zod';
import { Protocol, SizeBins } from './common.js';
import { InsnClass, PortableCpu } from './cpu.js';

export const PROFILE_SCHEMA_VERSION = 2;

export const ThreadRole = z.enum(['main', 'acceptor', 'worker', 'event-loop', 'background']);
export type ThreadRole = z.infer<typeof ThreadRole>;

export const NetworkModel = z.enum([
  'worker-pool',
  'event-loop',
  'prefork',
  'thread-per-connection',
  'process-pool',
  'process-per-connection',
  'process-threads',
]);
export type NetworkModel = z.infer<typeof NetworkModel>;

/** The models whose connections each have a thread or process of their own. */
export const OWN_CONNECTION: ReadonlySet<NetworkModel> = new Set([
  'thread-per-connection',
  'process-pool',
  'process-per-connection',
]);

/** The calls that read a socket, and those that write one, as a trace names them. */
export const SOCKET_RECV_CALLS: ReadonlySet<string> = new Set(['read', 'readv', 'recvfrom', 'recvmsg']);
/** The calls a reply goes out by, in the order of the bits the tracer's and twinreuse's
 *  masks of sends give them (reuse/twinreuse.c). */
export const SEND_CALLS = ['write', 'writev', 'sendto', 'sendmsg'] as const;
export const SOCKET_SEND_CALLS: ReadonlySet<string> = new Set(SEND_CALLS);
/** A send call's bit in those masks; 0 for a call that is not one. */
export function sendBit(call: string): number {
  const i = SEND_CALLS.indexOf(call as (typeof SEND_CALLS)[number]);
  return i < 0 ? 0 : 1 << i;
}
/** The calls that force a file's data to the disk. */
export const SYNC_CALLS: readonly string[] = ['fsync', 'fdatasync', 'sync_file_range'];

export const RecvCall = z.enum(['read', 'recvfrom', 'recvmsg']);
export const SendCall = z.enum(['write', 'sendto', 'sendmsg', 'writev']);
export const SleepCall = z.enum([
  'idle',
  'nanosleep',
  'clock_nanosleep',
  'futex',
  'epoll_wait',
  'poll',
  'select',
]);

/** One thread of the original, by role only (never its name). */
export const ThreadInfo = z.object({
  process: z.number().int().nonnegative(),
  role: ThreadRole,
  syscallsPerSec: z.number().nonnegative(),
});

/** A system call a thread makes per request (the serving threads' beyond the skeleton's). */
export const SyscallRate = z.object({
  name: z.string().regex(/^[a-z0-9_]+$/),
  perReq: z.number().nonnegative(),
  /** Calls each connection makes as it opens, besides `perReq` a request: made by the
   *  protocol's start-up request (PostgreSQL's), in the overall replay only. */
  perConn: z.number().nonnegative().optional(),
  /** Calls a cache filling from a cold start makes, besides `perReq`: `pages` pages each made
   *  once, the first time a request touches it, each request touching `touches` of them drawn
   *  at random (PostgreSQL's shared buffers, read into as the statements first need them). */
  cold: z.object({ pages: z.number().int().positive(), touches: z.number().nonnegative() }).optional(),
  sizes: SizeBins.optional(),
  /** `mmap`: the share of its maps that map a file, whose pages are then read (Apache maps
   *  the file it sends and writes from the map); the rest map anonymous memory. */
  fileShare: z.number().min(0).max(1).optional(),
  /** The share of its calls made after the reply is sent, before the connection's next
   *  request (Apache unmaps the file it sent, writes its log line and closes the file then):
   *  work out of the request's latency. */
  afterShare: z.number().min(0).max(1).optional(),
  /** Made once an event loop's turn for the turn's requests that need it, before the turn's
   *  replies go out (Redis writes and syncs its append-only file once a turn for all the turn's
   *  writes): the share of requests that need it. `perReq` is then the calls a request at the
   *  profiled loads, fewer than this where turns served several requests. */
  turnMarks: z.number().min(0).max(1).optional(),
});
export type SyscallRate = z.infer<typeof SyscallRate>;

/** A thread that serves no request: how it sleeps, how often it wakes at rest
 *  (periodUs, 0: never by itself) and how many more wake-ups each request brings
 *  (adaptive sleeps, as in threads that poll for work more often when busy). */
export const BackgroundThread = z.object({
  sleep: SleepCall,
  periodUs: z.number().int().nonnegative(),
  callsPerWake: z.number().int().nonnegative(),
  wakesPerReq: z.number().nonnegative().default(0),
  /** CPU time the thread spends awake, ns a second: cpuNsPerSec + cpuNsPerReq * requests/s. */
  cpuNsPerSec: z.number().nonnegative().default(0),
  cpuNsPerReq: z.number().nonnegative().default(0),
  /** Its wake-ups and CPU time a second at each profiled load, by request rate: where there
   *  are two or more, the clone follows them (linearly between two, along the lowest two's
   *  line below them, along the highest two's elasticity above them: runtime/bg.c's
   *  bg_beyond; at least 0) rather than the lines above. A thread that adapts its
   *  sleeps wakes more often under load, but not in proportion: memcached's woke 883, 1,824
   *  and 2,447 times a second at 500, 2,000 and 5,000 requests a second. */
  byLoad: z
    .array(
      z.object({
        rps: z.number().nonnegative(),
        hz: z.number().nonnegative(),
        cpuNsPerSec: z.number().nonnegative(),
      }),
    )
    .default([]),
  /** It runs in a process of its own, forked by the main process at the start (a database's
   *  checkpointer, background writer, WAL writer beside its process per connection). */
  ownProcess: z.boolean().default(false),
  /** Its disk work: reads and writes of regular files (with their sizes) and syncs, each as
   *  calls a request the whole server serves, made on its wake-ups (a WAL writer's writes and
   *  fsyncs follow the commits; a background writer's, the pages dirtied). */
  disk: z.array(SyscallRate).default([]),
});

/** A background thread that blocks for good. */
export const IDLE_BACKGROUND: z.infer<typeof BackgroundThread> = {
  sleep: 'idle',
  periodUs: 0,
  callsPerWake: 0,
  wakesPerReq: 0,
  cpuNsPerSec: 0,
  cpuNsPerReq: 0,
  byLoad: [],
  ownProcess: false,
  disk: [],
};

/** A serialized section (a database's row lock): the `nth` request of type `op` since the
 *  connection's last request of type `release` (or its start) waits for one of `ways` locks,
 *  chosen at random, and holds it until that connection's next `release` request has been
 *  served. Only where a thread serves one connection at a time (a thread or process per
 *  connection, a pool of processes, processes of threads). Fitted from the original's waits
 *  inside requests: the share of `op` requests that waited is the locks' busy share,
 *  rate x hold / ways, at each traced load. */
export const LockSection = z.object({
  op: z.string().regex(/^[A-Za-z]+$/),
  nth: z.number().int().positive(),
  release: z.string().regex(/^[A-Za-z]+$/),
  ways: z.number().int().positive().max(4096),
  /** How its waiter sleeps: in a futex, or on a latch of its own (epoll_wait on a signal, woken
   *  by its giver's kill), as the original's waits at its place did. */
  wait: z.enum(['futex', 'latch']).default('futex'),
  /** As measured, at each traced load (requests a second): the share of `op` requests that
   *  waited, and the mean time (us) from taking the lock to the release's reply. */
  byLoad: z
    .array(
      z.object({
        rps: z.number().nonnegative(),
        waited: z.number().min(0).max(1),
        holdUs: z.number().nonnegative(),
      }),
    )
    .default([]),
});
export type LockSection = z.infer<typeof LockSection>;

/** Process and thread model, network model. */
export const Skeleton = z.object({
  processes: z.number().int().positive(),
  threads: z.array(ThreadInfo).min(1),
  networkModel: NetworkModel,
  io: z.enum(['epoll', 'poll', 'select', 'blocking']),
  workers: z.number().int().positive(),
  /** A process pool's idle processes kept beside its busy ones (it forks as connections take
   *  them); 0: a pool of `workers` that does not grow. */
  spare: z.number().int().nonnegative().default(0),
  /** Processes of threads: the serving threads of each process (beside its main thread and its
   *  listener); 0 in the other models. */
  threadsPerProcess: z.number().int().nonnegative().default(0),
  recvCall: RecvCall,
  recvUntilEagain: z.boolean(),
  sendCall: SendCall,
  background: z.array(BackgroundThread),
  /** Serialized sections, at most 8. */
  locks: z.array(LockSection).max(8).default([]),
});
export type Skeleton = z.infer<typeof Skeleton>;

/** A request type's user-space work measured alone (a workload of that type only, the same
 *  sweep): how the body's parts divide between the types, so that a clone serving another mix
 *  does each type's share of the work. */
export const AloneCpu = PortableCpu.pick({
  insnsPerReq: true,
  dataCurve: true,
  codeCurve: true,
  conflict: true,
  branchMissesPerReq: true,
});
export type AloneCpu = z.infer<typeof AloneCpu>;

export const RequestType = z.object({
  op: z.string().regex(/^[A-Za-z]+$/),
  share: z.number().min(0).max(1),
  requestBytesMean: z.number().nonnegative(),
  responseSizes: SizeBins.min(1),
  /** Where the original answered each key with one size (a static file, a stored value): the
   *  size by the key's number as the load writes it (0 where none was measured), so that the
   *  clone answers a request sequence it never saw with the original's bytes. Sizes by key
   *  number only: no key, path or value. */
  keySizes: z.array(z.number().int().nonnegative()).optional(),
  /** Where the workload has more than one type (absent: every type does the same work). */
  alone: AloneCpu.optional(),
  /** The calls a request of this type makes beyond the skeleton's (absent: the kernel's
   *  `replay`, the same for every type): a transaction's commit makes its fsync. Each call's
   *  rates over the types, by their shares, come to its rate in `replay`. */
  replay: z.array(SyscallRate).optional(),
});
export type RequestType = z.infer<typeof RequestType>;

/** Kernel work per request: every system call of the target's processes, by name. */
export const KernelWork = z.object({
  syscallsPerReq: z.number().nonnegative(),
  byName: z.record(z.string(), z.number().nonnegative()),
  /** Calls the serving threads make per request beyond receive, send and the event wait. */
  replay: z.array(SyscallRate),
  recvSizes: SizeBins,
  sendSizes: SizeBins,
});

export const Body = z.object({
  /** The original's user-space work per request, independent of any one platform. */
  original: PortableCpu,
  /** The same measured on the clone's own skeleton (an empty body) under the same workload:
   *  what the body need not supply. */
  skeleton: PortableCpu.nullable(),
  /** The original measured again under its workload with more connections (`connections` of
   *  them): the work that follows the connection count, state a request reads on its own
   *  connection and reuses once the others have sent theirs. */
  moreConnections: z.object({ connections: z.number().int().positive(), cpu: AloneCpu }).optional(),
});

/** What-if and tuning knobs; a what-if study is an edited profile. */
const CrowdGroups = z.array(
  z.object({
    lines: z.number().int().min(2),
    stride: z.number().int().positive(),
    loadsPerReq: z.number().nonnegative(),
  }),
);

export const Knobs = z.object({
  /** Instructions of generated body work per request (null: the original's less the skeleton's). */
  bodyInsnsPerReq: z.number().nonnegative().nullable().default(null),
  /** Multiplies the body's instruction budget (what-if: 2 = twice the work). */
  insnScale: z.number().positive().default(1),
  /** Loads per request in each data ring, one ring per bin of the data reuse histogram
   *  (null: the histogram's own counts). */
  dataLoads: z.array(z.number().nonnegative()).nullable().default(null),
  /** Code blocks per request in each segment of the code chain, one per bin of the
   *  instruction-footprint curve (null: the curve's own counts). */
  codeBlocks: z.array(z.number().nonnegative()).nullable().default(null),
  /** Lines of each data ring (null, or 0 for a ring: solved from its bin with the
   *  interference correction). */
  dataLines: z.array(z.number().nonnegative()).nullable().default(null),
  /** Blocks of each code segment (null, or 0: solved likewise). */
  codeLines: z.array(z.number().nonnegative()).nullable().default(null),
  /** Crowd groups: lines one stride apart, sharing sets of every cache of few enough sets, that
   *  make the misses of caches of few ways the target's layout makes (null: fitted to the
   *  profile's reuse table). */
  crowd: CrowdGroups.nullable().default(null),
  /** The same for code: groups of code blocks one stride apart, each `loadsPerReq` blocks run
   *  a request (null: fitted to the profile's code reuse table). */
  codeCrowd: CrowdGroups.nullable().default(null),
  /** Branches per request on a pseudo-random bit (null: from the branch mispredictions). */
  hardBranchesPerReq: z.number().nonnegative().nullable().default(null),
  /** Instructions per request by class that the body's plan does not count (its parts' calls
   *  and loop set-ups, the skeleton's own drift), as the tuner last measured them: the code
   *  blocks and the mix loop leave them out of what they supply (null: none). */
  mixOverhead: z.partialRecord(InsnClass, z.number()).nullable().default(null),
});
export type Knobs = z.infer<typeof Knobs>;

export const TuningStep = z.object({
  iteration: z.number().int().nonnegative(),
  bodyInsnsPerReq: z.number().nonnegative(),
  cloneInsnsPerReq: z.number().nonnegative(),
  targetInsnsPerReq: z.number().nonnegative(),
  /** Relative error of instructions per request. */
  error: z.number(),
  /** Clone vs original per request at each point the tuner matches (misses of a cache size,
   *  branch mispredictions, instructions). */
  points: z.record(z.string(), z.object({ clone: z.number(), original: z.number() })).default({}),
  /** A trim of the kept iteration (its budget and random branches, checked with one platform's
   *  run: only the points that run gives), not an iteration of the whole sweep. */
  trim: z.boolean().optional(),
  /** The largest error of the step's scored figures, in units of its tolerance (at most 1 is
   *  on target), and the figure that sets it. */
  score: z.number().nonnegative().optional(),
  worst: z.string().optional(),
  /** The root mean square of the step's errors in units of their tolerances (its scored
   *  figures', each L1's over every L1 geometry as one figure, and its mix's furthest class):
   *  how far off the clone is as a whole, by which the tuner keeps its best iteration. */
  rms: z.number().nonnegative().optional(),
  /** Each L1's error over every L1 geometry a platform may have (`I@L1s`, `D@L1s`: the root
   *  mean square of the reuse tables' errors, in tolerances), as `rms` counts them. */
  l1: z.record(z.string(), z.number().nonnegative()).optional(),
  /** The instruction-mix class furthest from the original's share, in percentage points, as
   *  `rms` counts it (over the verdict's tolerance, TARGETS.mixPp). */
  mixPp: z.number().nonnegative().optional(),
  /** A trim: whether it was kept. */
  kept: z.boolean().optional(),
  /** The knobs this step ran with: any step of the history can be generated again. */
  knobs: Knobs.optional(),
});

export const Profile = z.object({
  schemaVersion: z.literal(PROFILE_SCHEMA_VERSION),
  kind: z.literal('twin-profile'),
  service: z.object({ name: z.string().regex(/^[A-Za-z0-9_.-]+$/), protocol: Protocol }),
  /** Where and how it was profiled: information only. */
  source: z.object({
    profiledAt: z.string(),
    machine: z.object({ cpus: z.number().int().positive(), arch: z.string(), kernel: z.string() }),
    loadRps: z.number().positive(),
    requests: z.number().int().nonnegative(),
    connections: z.number().int().positive(),
    /** Seconds of warm-up load before the target's memory was steady at `loadRps`. */
    settledS: z.number().nonnegative().optional(),
  }),
  skeleton: Skeleton,
  requests: z.array(RequestType).min(1),
  kernel: KernelWork,
  perRequest: z.object({
    cpuUsPerReq: z.number().nonnegative(),
    netBytesPerReq: z.number().nonnegative(),
    latencyP50Us: z.number().nonnegative(),
  }),
  body: Body,
  knobs: Knobs,
  tuning: z.array(TuningStep).default([]),
});
export type Profile = z.infer<typeof Profile>;

/** The part of the clone's body run after its reply is sent, in 1,024ths: the original's
 *  instructions a request from a send of the skeleton's call to its next look for work, less the
 *  clone's skeleton's own there, over the body's (the original's less the skeleton's); 0
 *  where either side's were not counted. */
export function bodyAfter(p: Profile): number {
  const [orig, skel] = [p.body.original, p.body.skeleton];
  const bit = sendBit(p.skeleton.sendCall);
  const after = (c: typeof orig | null) =>
    (c?.afterInsnsPerReq ?? []).reduce((a, n, mask) => a + (mask & bit ? n : 0), 0);
  const body = orig.insnsPerReq - (skel?.insnsPerReq ?? 0);
  if (!orig.afterInsnsPerReq || !skel?.afterInsnsPerReq || body <= 0) return 0;
  return Math.round(1024 * Math.min(1, Math.max(0, (after(orig) - after(skel)) / body)));
}
