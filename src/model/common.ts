import { z } from 'zod';

/** A size distribution: [bytes, weight] pairs, sorted by size. */
export const SizeBins = z.array(z.tuple([z.number().int().nonnegative(), z.number().nonnegative()]));
export type SizeBins = z.infer<typeof SizeBins>;

export const Protocol = z.enum(['memcached', 'resp', 'http', 'postgres']);
export type Protocol = z.infer<typeof Protocol>;

const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

/** One cache of a simulated platform. Valgrind needs a power-of-two number of sets. */
export const CacheGeometry = z
  .object({
    size: z.number().int().positive(),
    assoc: z.number().int().positive(),
    line: z.number().int().positive().refine(pow2, 'the line size must be a power of two'),
  })
  .refine((g) => pow2(g.size / (g.assoc * g.line)), {
    message: 'size / (assoc x line) must be a whole power of two (Valgrind simulates only such set counts)',
  });
export type CacheGeometry = z.infer<typeof CacheGeometry>;

/** A simulated platform (platforms/*.yaml): the caches Valgrind simulates. L2 and LLC each
 *  take a run of their own, as Valgrind's last level. */
export const Platform = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  I1: CacheGeometry,
  D1: CacheGeometry,
  L2: CacheGeometry,
  LLC: CacheGeometry,
});
export type Platform = z.infer<typeof Platform>;

/** Counters from one cachegrind run (summed over processes), per request. */
export const CpuCounters = z.object({
  platform: z.string(),
  requests: z.number().nonnegative(),
  insnsPerReq: z.number().nonnegative(),
  I1MissRate: z.number().min(0).max(1),
  D1MissRate: z.number().min(0).max(1),
  LLMissRate: z.number().min(0).max(1),
  branchMispredictRate: z.number().min(0).max(1),
  memRefsPerInsn: z.number().nonnegative(),
  branchesPerInsn: z.number().nonnegative(),
  /** Misses per 1,000 instructions. L2 is null where no run simulated it. */
  I1Mpki: z.number().nonnegative(),
  D1Mpki: z.number().nonnegative(),
  L2Mpki: z.number().nonnegative().nullable(),
  LLCMpki: z.number().nonnegative(),
  branchMpki: z.number().nonnegative(),
  /** Each pair of runs behind these counters (the LLC pair, then the L2 pair): its
   *  instructions per request and branch mispredictions per 1,000 instructions. The simulated
   *  caches change neither what runs nor the simulated branch predictor, so each pair is a
   *  sample of the same two figures. Where known, the pair's simulated caches (`size,assoc,line`)
   *  and their misses per 1,000 instructions: a pair of any platform that simulated the same
   *  cache is a sample of that cache's figure. */
  pairs: z
    .array(
      z.object({
        insnsPerReq: z.number().nonnegative(),
        branchMpki: z.number().nonnegative(),
        caches: z.object({ I1: z.string(), D1: z.string(), LL: z.string() }).optional(),
        I1Mpki: z.number().nonnegative().optional(),
        D1Mpki: z.number().nonnegative().optional(),
        LLMpki: z.number().nonnegative().optional(),
      }),
    )
    .default([]),
  /** Each twinreuse pair's own caches on this platform, misses per 1,000 instructions: pair k
   *  of n started the target's stack at placement k of n (src/collect/valgrind.ts), so their
   *  spread is how far the figures follow where the stack lies. */
  placements: z
    .array(
      z.object({
        I1Mpki: z.number().nonnegative(),
        D1Mpki: z.number().nonnegative(),
        L2Mpki: z.number().nonnegative().nullable(),
        LLCMpki: z.number().nonnegative(),
      }),
    )
    .optional(),
});
export type CpuCounters = z.infer<typeof CpuCounters>;

export const Latency = z.object({
  mean: z.number(),
  p50: z.number(),
  p90: z.number(),
  p99: z.number(),
  p999: z.number(),
  max: z.number(),
});
