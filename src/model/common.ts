import { z } from 'zod';

/** A size distribution: [bytes, weight] pairs, sorted by size. */
export const SizeBins = z.array(z.tuple([z.number().int().nonnegative(), z.number().nonnegative()]));
export type SizeBins = z.infer<typeof SizeBins>;

export const Protocol = z.enum(['memcached', 'resp', 'http']);
export type Protocol = z.infer<typeof Protocol>;

/** The simulated cache geometry of a Valgrind run (a simulated platform). */
export const CacheGeometry = z.object({
  size: z.number().int().positive(),
  assoc: z.number().int().positive(),
  line: z.number().int().positive(),
});
export const Platform = z.object({
  name: z.string(),
  I1: CacheGeometry,
  D1: CacheGeometry,
  LL: CacheGeometry,
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
