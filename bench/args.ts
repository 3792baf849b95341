/** The benches' command line: `--NAME N` flags taken out of `args` as whole numbers, and the
 *  example targets that remain (all three by default). */
export function numberFlag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args.splice(i, 2)[1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`bench: ${name} takes a whole number`);
  return v;
}

export const targetsOf = (args: string[]) => (args.length ? args : ['memcached', 'redis', 'nginx']);
