import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pgbenchMode, TwinError, type Workload } from '../model/index.js';
import type { LoadOptions, LoadResult } from './loadgen.js';

/** One of the scripts pgbench's arguments choose: its SQL statements' kinds (each one's first
 *  word, in lower case: `begin`, `update`, `select`) in order, and its weight. */
export interface PgScript {
  kinds: string[];
  weight: number;
}

/** The kinds of the SQL statements of a pgbench script: its lines less meta-commands (`\set`)
 *  and comments, split at semicolons. Statement kinds only: no text of a statement is kept. */
export function statementKinds(script: string): string[] {
  const sql = script
    .split('\n')
    .filter((l) => !/^\s*(\\|--)/.test(l))
    .join('\n');
  return sql
    .split(';')
    .map((s) => /^[\s(]*([A-Za-z]+)/.exec(s)?.[1]?.toLowerCase())
    .filter((k): k is string => k !== undefined);
}

/** A builtin script's text, as `pgbench --show-script` prints it. */
function showBuiltin(name: string): string {
  const r = spawnSync('pgbench', [`--show-script=${name}`], { encoding: 'utf8' });
  if (r.error) throw notInstalled();
  if (r.status !== 0)
    throw new TwinError(`pgbench knows no builtin script ${name}: ${lastLine(r.stderr)} (pgbench -b list)`);
  return r.stderr + r.stdout;
}

const notInstalled = () =>
  new TwinError(
    "driver pgbench is not installed: install PostgreSQL's client tools (Debian: apt-get install postgresql-15), or drive the target with twin-load (leave `driver` out)",
  );

/** The last line of a tool's error output that says something. */
const lastLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .pop() ?? '';

/** The scripts pgbench runs with these arguments (-b, -S, -N, -f, with @weights; TPC-B-like when
 *  none is named). */
export function pgbenchScripts(args: string[], builtin = showBuiltin, file = readScript): PgScript[] {
  const out: PgScript[] = [];
  const add = (text: string, spec: string) => {
    const at = spec.lastIndexOf('@');
    const weight = at > 0 ? Number(spec.slice(at + 1)) : 1;
    if (!(weight >= 0)) throw new TwinError(`pgbench script weight ${spec.slice(at + 1)} is not a number`);
    const kinds = statementKinds(text);
    if (!kinds.length) throw new TwinError(`pgbench script ${spec} has no SQL statement`);
    out.push({ kinds, weight });
  };
  const name = (spec: string) => (spec.lastIndexOf('@') > 0 ? spec.slice(0, spec.lastIndexOf('@')) : spec);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (short: string, long: string): string | null => {
      if (a === short || a === long) return args[++i] ?? '';
      if (a.startsWith(`${long}=`)) return a.slice(long.length + 1);
      if (a.startsWith(short) && a.length > short.length && !a.startsWith('--')) return a.slice(short.length);
      return null;
    };
    let v: string | null;
    if (a === '-S' || a === '--select-only') add(builtin('select-only'), 'select-only');
    else if (a === '-N' || a === '--skip-some-updates') add(builtin('simple-update'), 'simple-update');
    else if ((v = value('-b', '--builtin')) !== null) add(builtin(name(v)), v);
    else if ((v = value('-f', '--file')) !== null) add(file(name(v)), v);
  }
  if (!out.length) add(builtin('tpcb-like'), 'tpcb-like');
  return out;
}

function readScript(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new TwinError(`pgbench script ${path} cannot be read: give a file that exists`);
  }
}

/** The statement kinds of the one transaction a pgbench workload's connections repeat (every
 *  script it runs alike), in order: the cycle a connection's requests follow. Null for another
 *  driver, scripts that differ, or a script of one statement. */
export function transactionKinds(w: Workload): string[] | null {
  if (w.driver.name !== 'pgbench') return null;
  const scripts = pgbenchScripts(w.driver.args);
  const kinds = scripts[0].kinds;
  const same = scripts.every((s) => s.kinds.join(' ') === kinds.join(' '));
  return same && kinds.length >= 2 ? kinds : null;
}

/** SQL statements a transaction, the scripts' mean by weight. */
export function statementsPerTx(scripts: PgScript[]): number {
  const w = scripts.reduce((a, s) => a + s.weight, 0);
  if (!(w > 0)) throw new TwinError('pgbench scripts weigh nothing: give one a weight above 0');
  return scripts.reduce((a, s) => a + s.weight * s.kinds.length, 0) / w;
}

/** One transaction of pgbench's per-transaction log (`-l`): its script, when it ended (µs) and
 *  its latency (µs; null where it failed or was skipped). */
export interface PgTx {
  script: number;
  endUs: number;
  latencyUs: number | null;
  skipped: boolean;
}

const LOG_LINE = /^(\d+) (\d+) (\d+|failed|skipped) (\d+) (\d+) (\d+)(?: -?\d+)*$/;

/** Parses a pgbench log: `client transaction latency script epoch-s epoch-us [lag] [retries]`. */
export function parsePgbenchLog(text: string, file: string): PgTx[] {
  const out: PgTx[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line) return;
    const m = LOG_LINE.exec(line);
    if (!m)
      throw new TwinError(
        `pgbench's log ${file} line ${i + 1} does not parse (${JSON.stringify(line.slice(0, 60))}): drive with PostgreSQL 15's pgbench, without --aggregate-interval`,
      );
    const lat = m[3];
    out.push({
      script: Number(m[4]),
      endUs: Number(m[5]) * 1e6 + Number(m[6]),
      latencyUs: /^\d+$/.test(lat) ? Number(lat) : null,
      skipped: lat === 'skipped',
    });
  });
  return out;
}

/** The q-quantile of sorted values (nearest rank). */
const quantile = (s: number[], q: number) =>
  s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];

/** pgbench's run summarized as twin-load's result: a request is one SQL statement (a transaction
 *  of n statements counts n, the rate is statements a second), a latency a transaction's, the
 *  first `warmup` seconds' transactions left out of the figures. */
export function pgbenchResult(
  txs: PgTx[],
  scripts: PgScript[],
  rate: number,
  warmup: number,
  stdout: string,
): LoadResult {
  const stmts = (t: PgTx) => scripts[t.script]?.kinds.length ?? 0;
  // (Loops, not spreads: a run of a few seconds logs hundreds of thousands of transactions.)
  const start = txs.reduce((a, t) => Math.min(a, t.endUs - (t.latencyUs ?? 0)), Infinity);
  const from = start + warmup * 1e6;
  const measured = txs.filter((t) => t.endUs >= from);
  const ok = measured.filter((t) => t.latencyUs !== null);
  const lat = ok.map((t) => t.latencyUs!).sort((a, b) => a - b);
  const end = measured.reduce((a, t) => Math.max(a, t.endUs), from);
  const seconds = Math.max(1e-3, (end - from) / 1e6);
  const requests = ok.reduce((a, t) => a + stmts(t), 0);
  const count = new Map<string, number>();
  for (const t of ok) for (const k of scripts[t.script]?.kinds ?? []) count.set(k, (count.get(k) ?? 0) + 1);
  const failed = measured.filter((t) => t.latencyUs === null && !t.skipped).reduce((a, t) => a + stmts(t), 0);
  const skipped = measured.filter((t) => t.skipped).reduce((a, t) => a + stmts(t), 0);
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
  const tps = num(/^tps = ([\d.]+)/m);
  const latencyMeanMs = num(/^latency average = ([\d.]+) ms/m);
  return {
    protocol: 'postgres',
    target_rps: rate,
    achieved_rps: requests / seconds,
    duration_s: seconds,
    requests,
    sent: txs.reduce((a, t) => a + stmts(t), 0),
    errors: { ...(failed ? { failed } : {}), ...(skipped ? { skipped } : {}) },
    latency_us: lat.length
      ? {
          mean: lat.reduce((a, b) => a + b, 0) / lat.length,
          p50: quantile(lat, 0.5),
          p90: quantile(lat, 0.9),
          p99: quantile(lat, 0.99),
          p999: quantile(lat, 0.999),
          max: lat[lat.length - 1],
        }
      : { mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 },
    // The bytes are the tracer's (pgbench counts none).
    bytes: { sent: 0, received: 0 },
    ops: [...count].map(([op, n]) => ({ op, count: n, req_bytes: 0, resp_bytes: 0, resp_sizes: [] })),
    ...(Number.isFinite(tps) && Number.isFinite(latencyMeanMs) ? { driver: { tps, latencyMeanMs } } : {}),
  };
}

/** The arguments Twin gives pgbench: the host and port, no vacuum first, the simple query mode
 *  unless the workload names one, its clients and threads, the rate in transactions a second,
 *  the duration (or transactions a client), the per-transaction log; then the workload's. */
export function pgbenchArgs(w: Workload, port: number, o: LoadOptions, perTx: number, log: string): string[] {
  // One at a time where the caller bounds the requests in flight so (the Valgrind runs).
  const clients = Math.min(w.connections, o.maxInflight ?? Infinity);
  const length = o.maxRequests
    ? ['-t', String(Math.max(1, Math.ceil(o.maxRequests / perTx / clients)))]
    : ['-T', String(Math.max(1, Math.ceil((o.warmup ?? 1) + o.duration)))];
  return [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-n',
    ...(pgbenchMode(w.driver.args) === null ? ['-M', 'simple'] : []),
    '-c',
    String(clients),
    '-j',
    String(Math.min(w.threads, clients)),
    '-R',
    String(Math.round((o.rate / perTx) * 1000) / 1000),
    ...length,
    '-l',
    `--log-prefix=${log}`,
    ...w.driver.args,
  ];
}

/** Runs pgbench against 127.0.0.1:port at `o.rate` statements a second. */
export async function runPgbench(w: Workload, port: number, o: LoadOptions): Promise<LoadResult> {
  const scripts = pgbenchScripts(w.driver.args);
  const perTx = statementsPerTx(scripts);
  const dir = mkdtempSync(join(tmpdir(), 'twin-pgbench-'));
  try {
    const args = pgbenchArgs(w, port, o, perTx, join(dir, 'log'));
    const child = spawn('pgbench', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // A run of so many transactions has no end of its own: bounded by the time allowed.
    const bound = o.maxRequests ? setTimeout(() => child.kill('SIGKILL'), (o.duration + 30) * 1000) : null;
    const code = await new Promise<number | 'missing'>((resolve) => {
      child.on('error', () => resolve('missing'));
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    if (bound) clearTimeout(bound);
    if (code === 'missing') throw notInstalled();
    if (code !== 0) {
      const why = err.split('\n').find((l) => /error:|fatal:/i.test(l)) ?? lastLine(err);
      throw new TwinError(`pgbench failed (status ${code}): ${why.replace(/^pgbench:\s*/, '').trim()}`);
    }
    const logs = readdirSync(dir).filter((f) => f.startsWith('log.'));
    const txs = logs.flatMap((f) => parsePgbenchLog(readFileSync(join(dir, f), 'utf8'), f));
    if (!txs.length)
      throw new TwinError("pgbench ran no transaction: check the workload's rate and duration");
    const stray = txs.find((t) => t.script >= scripts.length);
    if (stray)
      throw new TwinError(
        `pgbench's log names script ${stray.script}, of ${scripts.length}: check the driver's arguments`,
      );
    return pgbenchResult(txs, scripts, o.rate, o.warmup ?? 1, out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
