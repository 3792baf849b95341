import { basename, dirname, resolve } from 'node:path';
import { shellQuote, TwinError, Workload, readYamlFile, type Platform } from '../model/index.js';
import { DEFAULT_PLATFORM, loadPlatform } from '../collect/platforms.js';
import { launchSpecFor, type LaunchSpec } from '../collect/target.js';
import { requireTool } from '../collect/bpftrace.js';
import type { ResolvedWorkload } from '../pipeline.js';

export function resolveWorkload(
  file: string | undefined,
  command: string[],
): ResolvedWorkload & { spec: LaunchSpec };
export function resolveWorkload(
  file: string | undefined,
  command: string[],
  attach: boolean,
): ResolvedWorkload;

/** Reads a workload file; a command after `--` replaces the file's own. */
export function resolveWorkload(
  file: string | undefined,
  command: string[],
  attach = false,
): ResolvedWorkload {
  if (!file) throw new TwinError('no workload: give --workload FILE (see examples/*/workload.yaml)');
  const workload = readYamlFile(Workload, file, 'workload');
  // The driver before anything starts: a run that cannot drive its target ends at once.
  if (workload.driver.name === 'pgbench') requireTool('pgbench', 'postgresql-15');
  const cmd = command.length ? command.map(shellQuote).join(' ') : undefined;
  // Attached, the target runs already; its command is needed only for the Valgrind runs.
  const spec =
    attach && !cmd && !workload.command ? null : launchSpecFor(workload, dirname(resolve(file)), cmd);
  return { workload, file, spec };
}

/** The profile's service name: --name, the workload's `name`, or a neutral default (never
 *  the target's program name, which is one of its own strings). */
export function serviceName(opt: string | undefined, w: Workload): string {
  return opt ?? w.name ?? 'service';
}

/** The platforms of repeated `--platform` flags, each loaded once; the default alone without. */
export function platformsOf(names: string[] | undefined): Platform[] {
  return (names?.length ? names : [DEFAULT_PLATFORM]).map(loadPlatform);
}

export const collect = (v: string, prev: string[] = []) => [...prev, v];

export function defaultOut(file: string): string {
  return `out/${basename(dirname(resolve(file)))}`;
}

export function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new TwinError(`--port ${v} is not a port number (1-65535)`);
  return n;
}

export function iterationsOf(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new TwinError(`${v} iterations: give a whole number, at least 1`);
  return n;
}

/** A whole number of 1 or more, for the named flag. */
export function parsePositive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new TwinError(`${flag} ${v} is not a whole number of 1 or more`);
  return n;
}

export function parseSeed(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new TwinError(`--seed ${v} is not a whole number`);
  return n;
}
