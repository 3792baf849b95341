import { z } from 'zod';

export const COMPARISON_SCHEMA_VERSION = 1;

export const ComparisonRow = z.object({
  metric: z.string(),
  /** The load point in requests/s, or null for a load-independent metric. */
  load: z.number().nullable(),
  original: z.number().nullable(),
  clone: z.number().nullable(),
  /** A cache's row: the lowest and the highest the original measured, pair by pair, its stack
   *  at another placement in each. */
  originalRange: z.tuple([z.number(), z.number()]).optional(),
});
export type ComparisonRow = z.infer<typeof ComparisonRow>;

/** How a comparison was made: validation's load seed, which differs from the seed profiling
 *  and tuning sent (held out), and, from `twin clone`, the seconds of each stage. */
export const ComparisonRun = z.object({
  loadSeed: z.number().int(),
  tuningSeed: z.number().int(),
  stages: z.array(z.object({ stage: z.string(), seconds: z.number().nonnegative() })).default([]),
});
export type ComparisonRun = z.infer<typeof ComparisonRun>;

/** Whether the clone meets the fidelity targets: how many figures were judged, and each
 *  that misses with its error and its bound. */
export const Verdict = z.object({
  holds: z.boolean(),
  judged: z.number().int().nonnegative(),
  failing: z.array(z.string()),
});
export type Verdict = z.infer<typeof Verdict>;

/** Original and clone measured in the same run, side by side. */
export const Comparison = z.object({
  schemaVersion: z.literal(COMPARISON_SCHEMA_VERSION),
  kind: z.literal('twin-comparison'),
  target: z.string(),
  platform: z.string(),
  rows: z.array(ComparisonRow),
  run: ComparisonRun.optional(),
  verdict: Verdict.optional(),
});
export type Comparison = z.infer<typeof Comparison>;
