import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Every long-running child Twin starts is registered here, so that any exit path (an
 *  error, Ctrl-C) ends them: Twin never leaves a process running. Children are started in
 *  their own process group and ended group-wide, by the PID Twin got from spawn. */
const live = new Set<ChildProcess>();

export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { ...opts, detached: true });
  live.add(child);
  child.on('exit', () => live.delete(child));
  child.on('error', () => live.delete(child));
  return child;
}

function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      /* already gone */
    }
  }
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends `sig` to the child's group, waits up to `graceMs`, then SIGKILLs the group. */
export async function stopChild(
  child: ChildProcess,
  sig: NodeJS.Signals = 'SIGTERM',
  graceMs = 5000,
): Promise<void> {
  if (exited(child)) {
    signalGroup(child, 'SIGKILL'); // stray group members (forked workers)
    return;
  }
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child, sig);
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([done, timer])) === 'timeout') {
    signalGroup(child, 'SIGKILL');
    await done;
  }
  signalGroup(child, 'SIGKILL');
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c, 'SIGTERM', 2000)));
}

/** Synchronous last resort for process exit. */
export function killAllNow(): void {
  for (const c of live) signalGroup(c, 'SIGKILL');
}

process.on('exit', killAllNow);
