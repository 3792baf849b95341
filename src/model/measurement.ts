import { z } from 'zod';
import { CpuCounters, Latency } from './common.js';
import { InsnMix } from './cpu.js';

export const MEASUREMENT_SCHEMA_VERSION = 1;

/** One real run of original or clone at one load point. */
export const LoadPoint = z.object({
  targetRps: z.number().positive(),
  throughputRps: z.number().nonnegative(),
  requests: z.number().int().nonnegative(),
  sent: z.number().int().nonnegative(),
  errors: z.record(z.string(), z.number().int().nonnegative()),
  latency: Latency,
  cpuUsPerReq: z.number().nonnegative(),
  /** The part of it in the kernel (system calls, faults, interrupts it was charged): the CPU
   *  time's share of system ticks (absent in older measurements and runs too short to tick). */
  cpuSysUsPerReq: z.number().nonnegative().optional(),
  netBytesPerReq: z.number().nonnegative(),
  syscallsPerReq: z.number().nonnegative().nullable(),
  /** Calls per request by name, all threads of all processes. */
  syscallsByName: z.record(z.string(), z.number().nonnegative()).default({}),
  threads: z.number().int().nonnegative(),
  /** Regular files' bytes read and written a request, and the calls that force them to the disk
   *  (fsync, fdatasync, sync_file_range), from the tracer (null untraced; absent in older
   *  measurements). */
  disk: z
    .object({
      readBytesPerReq: z.number().nonnegative(),
      writeBytesPerReq: z.number().nonnegative(),
      syncsPerReq: z.number().nonnegative(),
    })
    .nullable()
    .optional(),
  /** What a driver of the target's own reported (pgbench: transactions a second and their mean
   *  latency in microseconds). */
  driver: z.object({ tps: z.number().nonnegative(), latencyMeanUs: z.number().nonnegative() }).optional(),
  /** Processes, counted with the load's connections open (absent in older measurements). */
  processes: z.number().int().nonnegative().optional(),
  /** The clone's side only: the median, over the rounds timed, of its CPU time per request
   *  over the original's in the same round (the two alternate, so each ratio's runs met the
   *  same machine: on shared cores the same target's rounds move widely, both sides alike). */
  cpuRatio: z.number().positive().optional(),
});
export type LoadPoint = z.infer<typeof LoadPoint>;

/** One probe of the saturation search (measure/saturation.ts): an open-loop run at `rate`. */
export const SaturationProbe = z.object({
  rate: z.number().nonnegative(),
  achievedRps: z.number().nonnegative(),
  p99Us: z.number().nonnegative(),
  /** The target kept up with the rate and answered (the p99 aside). */
  keptUp: z.boolean(),
});
export type SaturationProbe = z.infer<typeof SaturationProbe>;

export const Measurement = z.object({
  schemaVersion: z.literal(MEASUREMENT_SCHEMA_VERSION),
  kind: z.literal('twin-measurement'),
  target: z.string(),
  points: z.array(LoadPoint),
  /** Valgrind's counters, one entry per simulated platform. */
  cpu: z.array(CpuCounters),
  /** The dynamic instruction mix of the serving threads (twinreuse), where measured. */
  mix: InsnMix.nullable().default(null),
  /** Serial steps a request of the serving threads' loads (chainSteps of twinreuse's chased
   *  loads): how much of their loads' latency a core cannot overlap. */
  loadStepsPerReq: z.number().nonnegative().optional(),
  /** The highest rate served with the p99 under the workload's bound (`--saturation`). */
  saturationRps: z.number().nonnegative().optional(),
  /** The search's probes, in the order run. */
  saturationProbes: z.array(SaturationProbe).optional(),
});
export type Measurement = z.infer<typeof Measurement>;
