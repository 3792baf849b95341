import { z } from 'zod';

/** A file's size: bytes, or drawn log-normal (its median and the sigma of its logarithm),
 *  clipped to [min, max] (a site's pages and images). */
export const FileSize = z.union([
  z.number().int().nonnegative(),
  z
    .object({
      logNormal: z.object({ median: z.number().positive(), sigma: z.number().nonnegative() }),
      min: z.number().int().nonnegative().default(0),
      max: z.number().int().positive(),
    })
    .refine((s) => s.min <= s.max, { message: 'min must not exceed max' }),
]);
export type FileSize = z.infer<typeof FileSize>;

/** Files Twin makes in the run folder: one, or `count` of them with `{i}` in the path
 *  numbered 0 to count - 1. */
export const FileEntry = z
  .object({
    path: z
      .string()
      .regex(/^[A-Za-z0-9_./{}-]+$/)
      .refine((p) => !p.startsWith('/') && !p.includes('..'), 'a relative path inside the run folder'),
    size: FileSize,
    count: z.number().int().positive().max(1_000_000).optional(),
  })
  .refine((f) => (f.count === undefined) === !f.path.includes('{i}'), {
    message: 'a path with {i} needs a count, and a count needs {i} in the path',
  });
export type FileEntry = z.infer<typeof FileEntry>;

/** The files of a workload's entries, each a path and a size: sets numbered, drawn sizes from a
 *  generator seeded by the entry's place, so every run makes the same files. */
export function expandFiles(entries: FileEntry[]): { path: string; size: number }[] {
  return entries.flatMap((f, k) => {
    const draw = sizeDrawer(f.size, k + 1);
    if (f.count === undefined) return [{ path: f.path, size: draw() }];
    return Array.from({ length: f.count }, (_, i) => ({
      path: f.path.replaceAll('{i}', String(i)),
      size: draw(),
    }));
  });
}

/** Draws sizes: a fixed number, or log-normal by Box-Muller on a seeded xorshift. */
function sizeDrawer(s: FileSize, seed: number): () => number {
  if (typeof s === 'number') return () => s;
  let x = (seed * 2654435761) >>> 0 || 1;
  const uniform = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return (x + 0.5) / 2 ** 32;
  };
  return () => {
    const z = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    const v = Math.round(s.logNormal.median * Math.exp(s.logNormal.sigma * z));
    return Math.min(s.max, Math.max(s.min, v));
  };
}
