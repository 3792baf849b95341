import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The benches' command line: `--NAME N` flags taken out of `args` as whole numbers, and the
 *  example targets that remain (every example by default). */
export function numberFlag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args.splice(i, 2)[1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`bench: ${name} takes a whole number`);
  return v;
}

export const targetsOf = (args: string[]) =>
  args.length
    ? args
    : readdirSync(join(ROOT, 'examples'))
        .filter((d) => existsSync(join(ROOT, 'examples', d, 'workload.yaml')))
        .sort();
