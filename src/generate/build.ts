import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TwinError } from '../model/index.js';

/** Builds a generated clone folder with make; returns the binary's path. */
export function buildClone(dir: string): string {
  if (!existsSync(join(dir, 'clone.c')))
    throw new TwinError(`${dir} is not a clone folder (no clone.c): run twin generate first`);
  const r = spawnSync('make', ['-s', '-C', dir, 'clone'], { encoding: 'utf8' });
  if (r.error) throw new TwinError(`cannot run make: ${r.error.message}; run scripts/bootstrap.sh`);
  if (r.status !== 0) {
    const line =
      (r.stderr || r.stdout).split('\n').find((l) => /error/i.test(l)) ?? `make exited ${r.status}`;
    throw new TwinError(`the clone in ${dir} does not build: ${line.trim()}`);
  }
  return join(dir, 'clone');
}
