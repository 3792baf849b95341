import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { Latency, TwinError, parseWith, type Workload } from '../model/index.js';
import { runPgbench } from './pgbench.js';

/** The JSON twin-load writes. */
export const LoadResult = z.object({
  protocol: z.string(),
  target_rps: z.number(),
  achieved_rps: z.number(),
  duration_s: z.number(),
  requests: z.number(),
  sent: z.number(),
  errors: z.record(z.string(), z.number()),
  latency_us: Latency,
  bytes: z.object({ sent: z.number(), received: z.number() }),
  ops: z.array(
    z.object({
      op: z.string(),
      count: z.number(),
      req_bytes: z.number(),
      resp_bytes: z.number(),
      resp_sizes: z.array(z.tuple([z.number(), z.number()])),
      /** Each key number's response size: 0 not measured, -1 more than one size. Absent
       *  past twin-load's bound on keys. */
      key_sizes: z.array(z.number().int().min(-1)).optional(),
    }),
  ),
  /** A driver of the target's own (pgbench): what it reported of its transactions. */
  driver: z.object({ tps: z.number(), latencyMeanMs: z.number() }).optional(),
});
export type LoadResult = z.infer<typeof LoadResult>;

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TWIN_LOAD = join(ROOT, 'loadgen/build/twin-load');

/** The load seed of profiling and tuning: every request sequence they send. Validation sends
 *  another (held out: a clone tuned to one sequence is checked on one it never saw). */
export const PROFILE_SEED = 1;

export function totalErrors(r: LoadResult): number {
  return Object.values(r.errors).reduce((a, b) => a + b, 0);
}

export interface LoadOptions {
  rate: number;
  duration: number;
  warmup?: number;
  maxRequests?: number;
  /** Bound on unanswered requests over all load threads (1: one at a time). */
  maxInflight?: number;
  preload?: boolean;
  dist?: 'poisson' | 'constant';
  seed?: number;
  timeoutMs?: number;
  /** Before each of these requests (0-based) goes out, all before it answered (needs
   *  `maxInflight` 1), `onMark` runs while the load waits. */
  marks?: number[];
  onMark?: (k: number) => Promise<void>;
}

export function loadArgs(w: Workload, port: number, o: LoadOptions, out: string): string[] {
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--protocol',
    w.protocol,
    '--rate',
    String(o.rate),
    '--duration',
    String(o.duration),
    '--warmup',
    String(o.warmup ?? 1),
    '--connections',
    String(w.connections),
    '--threads',
    String(Math.min(w.threads, w.connections)),
    '--keys',
    String(w.keys),
    '--key-size',
    String(w.keySize),
    '--key-dist',
    w.keyDist,
    '--dist',
    o.dist ?? 'poisson',
    '--seed',
    String(o.seed ?? PROFILE_SEED),
    '--timeout-ms',
    String(o.timeoutMs ?? 2000),
    '--out',
    out,
  ];
  for (const r of w.requests) {
    const v = r.valueSize ?? 0;
    const [lo, hi] = typeof v === 'number' ? [v, v] : [v.min, v.max];
    args.push('--req', [r.op, r.share, lo, hi, ...(r.path ? [r.path] : [])].join(','));
  }
  if (o.preload) args.push('--preload');
  if (o.maxRequests) args.push('--max-requests', String(o.maxRequests));
  if (o.maxInflight) args.push('--max-inflight', String(o.maxInflight));
  for (const k of o.marks ?? []) args.push('--mark-at', String(k));
  return args;
}

/** Where twin-load writes the key number in a request's key (memcached and RESP: its last
 *  digits, as many as the largest key's, after "key:" and the zeros that pad the number to
 *  the key's size) or path (HTTP: where the path's {key} lies, one place for all request
 *  types), for the clone to find it and answer a key with its size; null where it has none.
 *  The clone reads the digits from there on: each costs instructions of every request, so
 *  none of the padding. */
export function keyNumberAt(w: Workload): number | null {
  if (w.protocol === 'postgres') return null;
  if (w.protocol !== 'http') {
    const digits = String(Math.max(0, w.keys - 1)).length;
    return 'key:'.length + Math.max(0, w.keySize - 'key:'.length - digits);
  }
  const at = new Set(w.requests.map((r) => r.path?.indexOf('{key}') ?? -1));
  const [only] = at;
  return at.size === 1 && only >= 0 ? only : null;
}

/** Runs twin-load against 127.0.0.1:port and returns its result. */
export async function runLoad(w: Workload, port: number, o: LoadOptions): Promise<LoadResult> {
  if (w.driver.name === 'pgbench') return runPgbench(w, port, o);
  if (!existsSync(TWIN_LOAD)) throw new TwinError(`twin-load is not built: run scripts/bootstrap.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'twin-load-'));
  const out = join(dir, 'result.json');
  try {
    const marked = (o.marks?.length ?? 0) > 0;
    const child = spawn(TWIN_LOAD, loadArgs(w, port, o, out), {
      stdio: [marked ? 'pipe' : 'ignore', marked ? 'pipe' : 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // At each mark twin-load waits for a line: sent once onMark is done (a failure ends the
    // load, and is thrown once it has exited).
    let failed: unknown = null;
    child.stdin?.on('error', () => {}); // twin-load gone: its exit tells
    if (marked)
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const k = Number(/^mark (\d+)$/.exec(line)?.[1] ?? NaN);
        if (!Number.isFinite(k)) return;
        (o.onMark ?? (async () => {}))(k).then(
          () => child.stdin!.write('\n'),
          (e: unknown) => {
            failed = e;
            child.kill('SIGKILL');
          },
        );
      });
    const code: number = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
    if (failed) throw failed;
    if (code !== 0)
      throw new TwinError(`twin-load failed: ${err.trim().split('\n').pop() ?? `status ${code}`}`);
    return parseWith(LoadResult, JSON.parse(readFileSync(out, 'utf8')), 'twin-load result');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sets every key of the workload once (twin-load --preload), the same data set whatever the
 *  load seed. */
export async function preload(w: Workload, port: number, timeoutMs?: number): Promise<void> {
  await runLoad(w, port, { rate: 1, duration: 0.001, warmup: 0, preload: true, maxRequests: 1, timeoutMs });
}
