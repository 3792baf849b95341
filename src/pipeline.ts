/**
 * The stages of `twin clone`, in order, and their timings: profile the original (traced real
 * runs, then the Valgrind sweep), measure the clone's skeleton alone, tune the body, validate
 * original and clone side by side. `twin profile` and `twin validate` run their own stages
 * from here too; the CLI only parses flags, prints and exits.
 */
import { join } from 'node:path';
import {
  writeJsonFile,
  type Comparison,
  type Measurement,
  type Platform,
  type Profile,
  type Workload,
} from './model/index.js';
import { cloneLaunchSpec, type LaunchSpec } from './collect/target.js';
import { buildClone } from './generate/build.js';
import { validate } from './measure/validate.js';
import { profileTarget } from './profile/index.js';
import type { Progress, StageTime } from './report/progress.js';
import { tune, withSkeleton } from './tune/index.js';

/** A workload file read, and how to start its target (null: attached, no command). */
export interface ResolvedWorkload {
  workload: Workload;
  file: string;
  spec: LaunchSpec | null;
}

export interface ProfileOptions {
  name: string;
  port?: number;
  /** Attach to this running target (on `port`) instead of starting one. */
  attachPid?: number;
}

/** The original's profile: traced and under Valgrind, then the clone's skeleton alone (what
 *  the body need not supply). */
export async function profileStages(r: ResolvedWorkload, o: ProfileOptions, p: Progress): Promise<Profile> {
  const loads = [...new Set(r.workload.loads)].sort((a, b) => a - b).join(', ');
  p.stage('profile', `tracing at ${loads} requests/s, then the Valgrind sweep`);
  const found = await profileTarget(r.workload, r.spec, { ...o, progress: p.step });
  p.stage('skeleton', "the clone's skeleton alone under Valgrind");
  return withSkeleton(found, r.workload, p.step);
}

/** Original and clone side by side: the clone built, both measured at every load point and,
 *  unless `noCpu`, on every platform. */
export async function validateStage(
  r: ResolvedWorkload & { spec: LaunchSpec },
  name: string,
  cloneDir: string,
  o: { platforms: Platform[]; noCpu?: boolean; seed?: number; saturation?: boolean; workers?: number },
  p: Progress,
): Promise<{ comparison: Comparison; measurements: Measurement[] }> {
  p.stage('validate', `original and clone side by side, on ${o.platforms.map((x) => x.name).join(', ')}`);
  const binary = buildClone(cloneDir);
  return validate(
    r.workload,
    name,
    r.spec,
    cloneLaunchSpec(binary, r.workload, o.workers ?? r.workload.cloneWorkers),
    {
      progress: p.step,
      noCpu: o.noCpu,
      saturation: o.saturation,
      platforms: o.platforms,
      seed: o.seed,
    },
  );
}

export interface CloneOptions extends ProfileOptions {
  out: string;
  /** Where the comparison goes (default: `out`/comparison.json). */
  json?: string;
  platforms: Platform[];
  tuneIterations?: number;
  /** Validation's load seed (default: `VALIDATION_SEED`, held out from tuning's). */
  seed?: number;
  /** Validation finds each side's saturation throughput too. */
  saturation?: boolean;
  /** Prints a result (the profile's summary, the tuning summary) as soon as it is known. */
  show: (what: 'profile' | 'tuned', profile: Profile) => void;
}

/** `twin clone`: every stage, each result written under `out` as it comes (profile.json,
 *  clone/, comparison.json with each stage's seconds, clone/measurements.json). */
export async function clonePipeline(
  r: ResolvedWorkload & { spec: LaunchSpec },
  o: CloneOptions,
  p: Progress,
): Promise<{ profile: Profile; comparison: Comparison; stages: StageTime[] }> {
  const profile = await profileStages(r, o, p);
  writeJsonFile(join(o.out, 'profile.json'), profile);
  o.show('profile', profile);
  p.stage('tune', 'generating, building and measuring the clone');
  const tuned = await tune(profile, r.workload, join(o.out, 'clone'), {
    progress: p.step,
    maxIterations: o.tuneIterations,
  });
  writeJsonFile(join(o.out, 'profile.json'), tuned);
  o.show('tuned', tuned);
  const { comparison, measurements } = await validateStage(r, o.name, join(o.out, 'clone'), o, p);
  const stages = p.end();
  const withStages = { ...comparison, run: { ...comparison.run!, stages } };
  writeJsonFile(o.json ?? join(o.out, 'comparison.json'), withStages);
  writeJsonFile(join(o.out, 'clone', 'measurements.json'), measurements);
  return { profile: tuned, comparison: withStages, stages };
}
