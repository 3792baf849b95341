import { createServer, connect } from 'node:net';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve as resolvePath } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { TwinError, expandFiles, type Workload } from '../model/index.js';
import { spawnTracked, stopChild, exited } from './children.js';
import { processTree } from './proc.js';
import { keyNumberAt } from './loadgen.js';
import { pgReady } from './pgwire.js';

/** How to start a target: a shell command line with {port}, {dir} and {run} placeholders. */
export interface LaunchSpec {
  command: string;
  /** The workload file's folder ({dir}). */
  dir: string;
  templates: string[];
  files: { path: string; size: number }[];
  startTimeoutS: number;
  /** Run the target under this prefix (e.g. valgrind and its flags). */
  wrapper?: string[];
  /** Lines run by the shell before exec (e.g. ulimit). */
  preamble?: string;
  /** The workload's set-up: shell lines run before the target, not under the wrapper. */
  setup?: string;
  /** Whether the target, its port open, takes requests (a database recovering at start answers
   *  its first connections with an error); absent: an open port is enough. */
  ready?: (port: number, timeoutMs: number) => Promise<boolean>;
  /** The signal that stops it (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
  /** Extra time allowed for the start (Valgrind is slow). */
  startSlowdown?: number;
}

export interface RunningTarget {
  pid: number;
  port: number;
  runDir: string;
  child: ChildProcess;
  stderrTail(): string;
  /** PIDs of the target and its descendants, now. */
  pids(): number[];
  stop(): Promise<{ code: number | null; signal: string | null }>;
}

export function launchSpecFor(w: Workload, dir: string, command?: string): LaunchSpec {
  const cmd = command ?? w.command;
  if (!cmd) throw new TwinError('no target command: give one after -- or set `command` in the workload file');
  return {
    command: cmd,
    // Absolute: the command runs in the run folder.
    dir: resolvePath(dir),
    templates: w.templates,
    files: expandFiles(w.files),
    startTimeoutS: w.startTimeout,
    ...(w.setup ? { setup: w.setup } : {}),
    ...(w.protocol === 'postgres' ? { ready: pgReady } : {}),
    ...(w.stopSignal !== 'SIGTERM' ? { stopSignal: w.stopSignal } : {}),
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something on 127.0.0.1 accepts connections on `port`. */
export function portOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export async function ensurePortFree(port: number): Promise<void> {
  if (await portOpen(port))
    throw new TwinError(
      `port ${port} is in use: pick another with --port, or leave --port out and Twin picks a free one`,
    );
}

export function substitute(text: string, vars: Record<string, string>): string {
  return text.replace(/\{(port|dir|run)\}/g, (_, k: string) => vars[k]);
}

/** Pseudo-random printable bytes from a fixed seed: the files Twin makes are its own. */
export function makeFileBytes(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = 33 + (x % 94);
  }
  return buf;
}

function prepareRunDir(spec: LaunchSpec, port: number): { runDir: string; vars: Record<string, string> } {
  const runDir = mkdtempSync(join(tmpdir(), 'twin-run-'));
  // Readable by every user: a server that drops its privileges (Apache's `User www-data`) reads
  // its files as that user. The files are Twin's own: templates and random bytes.
  chmodSync(runDir, 0o755);
  const vars = { port: String(port), dir: spec.dir, run: runDir };
  for (const t of spec.templates) {
    let text: string;
    try {
      text = readFileSync(join(spec.dir, t), 'utf8');
    } catch {
      throw new TwinError(
        `workload template ${t} not found in ${spec.dir}: add it or remove it from \`templates\``,
      );
    }
    writeFileSync(join(runDir, t), substitute(text, vars));
  }
  spec.files.forEach((f, i) => {
    const p = join(runDir, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, makeFileBytes(f.size, i + 1));
  });
  return { runDir, vars };
}

/** How long a readiness check may wait for its answer (times the start's slowdown). */
const READY_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the target on a free (or given) port and waits until it accepts connections. */
export async function launchTarget(spec: LaunchSpec, fixedPort?: number): Promise<RunningTarget> {
  const port = fixedPort ?? (await freePort());
  if (fixedPort !== undefined) await ensurePortFree(fixedPort);
  const { runDir, vars } = prepareRunDir(spec, port);
  const cmd = substitute(spec.command, vars);
  const wrapped = spec.wrapper?.length ? `${spec.wrapper.join(' ')} ${cmd}` : cmd;
  // A set-up that fails ends the start with its own error output's last line.
  const setup = spec.setup
    ? `{ ${substitute(spec.setup, vars)}\n} >&2 || { echo "the workload's setup failed (status $?)" >&2; exit 1; }\n`
    : '';
  const line = `${spec.preamble ?? ''}\n${setup}exec ${wrapped}`;
  const child = spawnTracked('bash', ['-c', line], { cwd: runDir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const stderrTail = () => {
    const lines = stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('=='));
    return lines.length ? lines[lines.length - 1] : '';
  };
  const target: RunningTarget = {
    pid: child.pid ?? -1,
    port,
    runDir,
    child,
    stderrTail,
    pids: () => (child.pid ? processTree(child.pid) : []),
    stop: async () => {
      await stopChild(child, spec.stopSignal ?? 'SIGTERM', 10000 * (spec.startSlowdown ?? 1));
      rmSync(runDir, { recursive: true, force: true });
      return { code: child.exitCode, signal: child.signalCode };
    },
  };
  const deadline = Date.now() + spec.startTimeoutS * 1000 * (spec.startSlowdown ?? 1);
  for (;;) {
    const failed = await Promise.race([spawnError, sleep(0).then(() => null)]);
    if (failed) {
      await target.stop();
      throw new TwinError(`cannot start the target: ${failed.message}`);
    }
    if (exited(child)) {
      await target.stop();
      const why = stderrTail();
      throw new TwinError(
        `the target exited at start (${child.exitCode !== null ? `status ${child.exitCode}` : child.signalCode})${why ? `: ${why}` : ''}; check its command line`,
      );
    }
    // A start-up answered under Valgrind takes seconds: the process it forks starts slowly.
    const ready = () => !spec.ready || spec.ready(port, READY_MS * (spec.startSlowdown ?? 1));
    if ((await portOpen(port, 200)) && (await ready())) return target;
    if (Date.now() > deadline) {
      await target.stop();
      throw new TwinError(
        `the target did not accept connections on port ${port} within ${spec.startTimeoutS} s; check that its command listens on {port}`,
      );
    }
    await sleep(50);
  }
}

/** A target Twin did not start: traced and loaded, never stopped (stop() leaves it running). */
export async function attachTarget(pid: number, port: number): Promise<RunningTarget> {
  if (!Number.isInteger(pid) || pid <= 0 || processTree(pid).length === 0)
    throw new TwinError(`no process ${pid} to attach to: check --pid`);
  if (!(await portOpen(port)))
    throw new TwinError(`nothing accepts connections on 127.0.0.1:${port}: check --port`);
  return {
    pid,
    port,
    runDir: '',
    child: undefined as unknown as ChildProcess,
    stderrTail: () => '',
    pids: () => processTree(pid),
    stop: async () => ({ code: null, signal: null }),
  };
}

/** How to start a built clone, as a target like any other. */
/** How to start a built clone; `workers` sets its pool's threads or processes. */
export function cloneLaunchSpec(binary: string, w: Workload, workers?: number): LaunchSpec {
  const at = keyNumberAt(w);
  return {
    command: `'${resolvePath(binary)}' --port {port} --dir {run}${at === null ? '' : ` --key-at ${at}`}${workers ? ` --workers ${workers}` : ''}`,
    dir: '.',
    templates: [],
    files: [],
    startTimeoutS: w.startTimeout,
  };
}
