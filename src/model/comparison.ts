import { z } from 'zod';

export const COMPARISON_SCHEMA_VERSION = 1;

export const ComparisonRow = z.object({
  metric: z.string(),
  /** The load point in requests/s, or null for a load-independent metric. */
  load: z.number().nullable(),
  original: z.number().nullable(),
  clone: z.number().nullable(),
});
export type ComparisonRow = z.infer<typeof ComparisonRow>;

/** Original and clone measured in the same run, side by side. */
export const Comparison = z.object({
  schemaVersion: z.literal(COMPARISON_SCHEMA_VERSION),
  kind: z.literal('twin-comparison'),
  target: z.string(),
  platform: z.string(),
  rows: z.array(ComparisonRow),
});
export type Comparison = z.infer<typeof Comparison>;
