import { dirname, resolve, basename } from 'node:path';
import { readFileSync } from 'node:fs';
import { Profile, PROFILE_SCHEMA_VERSION, TwinError, Workload, parseWith, readYamlFile } from '../model/index.js';
import { launchSpecFor, type LaunchSpec } from '../profile/target.js';

export interface ResolvedWorkload {
  workload: Workload;
  file: string;
  spec: LaunchSpec;
}

export function resolveWorkload(file: string | undefined, command: string[]): ResolvedWorkload;
export function resolveWorkload(file: string | undefined, command: string[], attach: boolean): Omit<ResolvedWorkload, 'spec'> & { spec: LaunchSpec | null };

/** Reads a workload file; a command after `--` replaces the file's own. */
export function resolveWorkload(file: string | undefined, command: string[], attach = false): Omit<ResolvedWorkload, 'spec'> & { spec: LaunchSpec | null } {
  if (!file) throw new TwinError('no workload: give --workload FILE (see examples/*/workload.yaml)');
  const workload = readYamlFile(Workload, file, 'workload');
  const cmd = command.length ? command.map(shellQuote).join(' ') : undefined;
  // Attached, the target runs already; its command is needed only for the Valgrind runs.
  const spec = attach && !cmd && !workload.command ? null : launchSpecFor(workload, dirname(resolve(file)), cmd);
  return { workload, file, spec };
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./{}-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The profile's service name: --name, the workload's `name`, or a neutral default (never
 *  the target's program name, which is one of its own strings). */
export function serviceName(opt: string | undefined, w: Workload): string {
  return opt ?? w.name ?? 'service';
}

export function readProfile(file: string): Profile {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TwinError(code ? `cannot read profile ${file}: ${code}` : `profile ${file} is not JSON: ${(e as Error).message}`);
  }
  const v = (data as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (typeof data === 'object' && data !== null && v !== undefined && v !== PROFILE_SCHEMA_VERSION)
    throw new TwinError(`profile ${file} has schemaVersion ${JSON.stringify(v)}; this Twin reads version ${PROFILE_SCHEMA_VERSION}: profile the target again with this version`);
  return parseWith(Profile, data, `profile ${file}`);
}

export function progress(quiet: boolean | undefined): (msg: string) => void {
  const t0 = Date.now();
  return quiet ? () => {} : (msg) => process.stderr.write(`[twin ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

export function defaultOut(file: string): string {
  return `out/${basename(dirname(resolve(file)))}`;
}
