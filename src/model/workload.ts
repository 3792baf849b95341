import { z } from 'zod';
import { Protocol } from './common.js';
import { FileEntry } from './files.js';

const ValueSize = z.union([
  z.number().int().nonnegative(),
  z
    .object({ min: z.number().int().nonnegative(), max: z.number().int().nonnegative() })
    .refine((v) => v.min <= v.max, { message: 'min must not exceed max' }),
]);

/** Redis data-structure commands, besides every protocol's get and set: twin-load sends them on
 *  keys of their own type (`c:`, `l:`, `h:` prefixes), so a mix of them never meets WRONGTYPE. */
export const RESP_ONLY_OPS = ['incr', 'lpush', 'lrange', 'hset', 'hget'] as const;

export const RequestMix = z.object({
  op: z.enum(['get', 'set', ...RESP_ONLY_OPS]),
  share: z.number().positive({ message: 'share must be a positive number' }),
  valueSize: ValueSize.optional(),
  path: z.string().startsWith('/').optional(),
});

/** Key popularity: `uniform`, or `zipf:S`, Zipf with exponent S > 0 over the key numbers, key 0
 *  the most popular (0.99 is the usual cache workload's skew). */
export const KeyDist = z.string().superRefine((v, ctx) => {
  const m = /^zipf:((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)$/.exec(v);
  if (v !== 'uniform' && !(m && Number(m[1]) > 0 && Number.isFinite(Number(m[1]))))
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)} is no key distribution: give uniform or zipf:S with S > 0 (zipf:0.99)`,
    });
});

/** Seconds: a number, or a string with a unit (`500ms`, `10s`, `2m`). */
/** A latency in microseconds: a number, or a number with a unit (us, ms, s). */
export const LatencyBound = z.union([z.number().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s)\s*$/.exec(v);
  if (!m || Number(m[1]) <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)} is no latency: give microseconds (10000) or a number with a unit (500us, 10ms, 1s)`,
    });
    return z.NEVER;
  }
  return Number(m[1]) * { us: 1, ms: 1e3, s: 1e6 }[m[2] as 'us' | 'ms' | 's'];
});

export const Duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$/.exec(v) : null;
  const s =
    typeof v === 'number' ? v : m ? Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2] as 'ms' | 's' | 'm'] : NaN;
  if (!(s > 0)) {
    const message = `${JSON.stringify(v)} is no duration: give seconds (5) or a number with a unit (500ms, 10s, 2m)`;
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  }
  return s;
});

/** A command line as one string (shell words) or a list of arguments, as Kubernetes and
 *  Compose write it; a list is joined with each argument quoted for the shell. */
export const Command = z
  .union([z.string(), z.array(z.union([z.string(), z.number()]))])
  .transform((v, ctx) => {
    const line = typeof v === 'string' ? v : v.map((a) => shellQuote(String(a))).join(' ');
    if (!line.trim()) {
      ctx.addIssue({ code: 'custom', message: 'the command is empty: give a string or a list of arguments' });
      return z.NEVER;
    }
    return line;
  });

/** One argument quoted for a POSIX shell where it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./{}-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A driver's arguments: a list, or a string split at white space. */
const DriverArgs = z
  .union([z.string(), z.array(z.union([z.string(), z.number()]))])
  .transform((v) => (typeof v === 'string' ? v.split(/\s+/).filter(Boolean) : v.map(String)));

/** What drives the load: twin-load (the default), or a server's own benchmark with its arguments
 *  (`pgbench`, which Twin gives the host, port, rate, clients, duration and log). */
export const Driver = z
  .union([
    z.enum(['twin-load', 'pgbench']),
    z.object({ name: z.enum(['twin-load', 'pgbench']), args: DriverArgs.default([]) }).strict(),
  ])
  .transform((v) => (typeof v === 'string' ? { name: v, args: [] } : v));
export type Driver = z.infer<typeof Driver>;

/** The fields of a workload file; Workload adds the checks across fields. */
const WorkloadFields = z.object({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .optional(),
  /** The target's command line, a string or a list: `{port}` becomes the port Twin picks,
   *  `{dir}` the file's folder, `{run}` a fresh run folder. */
  command: Command.optional(),
  /** Shell lines run in the run folder before each start of the target, with the same
   *  placeholders, never under a wrapper (Valgrind): a data set the target needs made afresh
   *  (a database's cluster and tables). */
  setup: Command.optional(),
  protocol: Protocol,
  driver: Driver.default({ name: 'twin-load', args: [] }),
  /** Files of the workload's folder copied into the run folder with {port}, {dir} and {run}
   *  replaced (a server's configuration). */
  templates: z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/)).default([]),
  /** Files Twin makes in the run folder before the start, of pseudo-random printable bytes:
   *  one per entry, or a numbered set with sizes drawn (FileEntry). */
  files: z.array(FileEntry).default([]),
  connections: z.number().int().positive().default(8),
  threads: z.number().int().positive().default(2),
  keys: z.number().int().positive().default(1000),
  keySize: z.number().int().min(8).max(250).default(16),
  /** Which keys requests ask for: hot keys decide what a server's caches hold, so a skewed
   *  workload is profiled and validated skewed. */
  keyDist: KeyDist.default('uniform'),
  preload: z.boolean().default(true),
  /** twin-load's request mix (a driver of its own sends its own requests: none here). */
  requests: z.array(RequestMix).default([]),
  /** Load points, requests/s; the first (lowest) is also the profiling load. */
  loads: z.array(z.number().positive()).min(1),
  /** Seconds of measured load per point (after a one-second warm-up). */
  duration: Duration.default(5),
  /** Most seconds of warm-up load at a rate before it is measured: windows of load run until
   *  the target's memory is steady; a target still growing past this is refused. */
  settle: Duration.default(30),
  /** Validation alternates original and clone this many times per load point and reports
   *  medians: these machines are shared and noisy. */
  rounds: z.number().int().positive().default(3),
  /** Requests the Valgrind runs send (two runs: this many and three times as many). */
  valgrindRequests: z.number().int().positive().default(2000),
  /** Requests sent before each Valgrind run's measured ones, for a data set that only the
   *  load fills (no preload): their count is what the target takes to settle. */
  valgrindWarmup: z.number().int().nonnegative().default(0),
  /** `twin validate --saturation`: the p99 latency a rate must keep to count as served, in
   *  microseconds (a number) or with a unit (500us, 10ms). */
  saturationP99: LatencyBound.default(10000),
  /** The signal that stops the target: SIGTERM, or another where SIGTERM makes it do work a
   *  run should not count (PostgreSQL's checkpoint at a smart or fast shutdown: SIGQUIT). */
  stopSignal: z.enum(['SIGTERM', 'SIGINT', 'SIGQUIT']).default('SIGTERM'),
  /** Seconds to wait for the target to accept connections. */
  startTimeout: z.number().positive().default(10),
  /** The clone's pool of threads or processes when validated under this workload (`./clone
   *  --workers N`), for a target configured otherwise than the one profiled (memcached -t 2
   *  beside a clone profiled at -t 4); `twin validate --workers` goes before it. */
  cloneWorkers: z.number().int().positive().optional(),
});

/** The target and the load it is profiled and validated under (examples/<target>/workload.yaml). */
/** The query mode pgbench's arguments name (`-M m`, `-Mm`, `--protocol m`, `--protocol=m`):
 *  '' where the flag ends the arguments, null where none is named. */
export function pgbenchMode(args: string[]): string | null {
  const k = args.findIndex((a) => a === '-M' || a === '--protocol' || /^(-M|--protocol=)./.test(a));
  if (k < 0) return null;
  const a = args[k];
  return a === '-M' || a === '--protocol' ? (args[k + 1] ?? '') : a.replace(/^(-M|--protocol=)/, '');
}

export const Workload = WorkloadFields.superRefine((w, ctx) => {
  const own = w.driver.name !== 'twin-load';
  if (!own && !w.requests.length)
    ctx.addIssue({
      code: 'custom',
      message: 'give at least one request (twin-load sends them)',
      path: ['requests'],
    });
  if (own && w.requests.length)
    ctx.addIssue({
      code: 'custom',
      message: `driver ${w.driver.name} sends requests of its own: leave \`requests\` out`,
      path: ['requests'],
    });
  if ((w.protocol === 'postgres') !== (w.driver.name === 'pgbench'))
    ctx.addIssue({
      code: 'custom',
      message:
        'protocol postgres goes with driver pgbench, and pgbench with protocol postgres (twin-load speaks memcached, resp and http)',
      path: ['driver'],
    });
  const mode = pgbenchMode(w.driver.args);
  if (w.driver.name === 'pgbench' && mode !== null && mode !== 'simple')
    ctx.addIssue({
      code: 'custom',
      message: `pgbench's query mode ${mode || '(none)'}: the clone speaks the simple query protocol alone (give -M simple, or leave -M out)`,
      path: ['driver', 'args'],
    });
  if (own && w.preload)
    ctx.addIssue({
      code: 'custom',
      message: `driver ${w.driver.name} loads no data set: set \`preload: false\` (the target's set-up makes its data)`,
      path: ['preload'],
    });
  // twin-load speaks the data-structure commands in RESP alone: refused here, not at the first load.
  w.requests.forEach((r, i) => {
    if (w.protocol !== 'resp' && (RESP_ONLY_OPS as readonly string[]).includes(r.op))
      ctx.addIssue({
        code: 'custom',
        message: `op ${r.op} is a redis (resp) command: protocol ${w.protocol} has no ${r.op}`,
        path: ['requests', i, 'op'],
      });
  });
});
export type Workload = z.infer<typeof Workload>;
export type RequestMix = z.infer<typeof RequestMix>;
