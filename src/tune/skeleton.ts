import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Profile, Workload } from '../model/index.js';
import { cloneLaunchSpec } from '../collect/target.js';
import { measurePortable } from '../collect/cpu.js';
import { buildClone } from '../generate/build.js';
import { generateClone } from '../generate/index.js';
import { bodyTarget } from '../synth/body.js';

/** A profile whose body is empty: the clone's skeleton alone. */
export function skeletonOnly(p: Profile): Profile {
  const t = bodyTarget(p);
  return {
    ...p,
    // No part per connection either.
    body: { ...p.body, moreConnections: undefined },
    knobs: {
      ...p.knobs,
      bodyInsnsPerReq: 0,
      dataLoads: t.dataBins.map(() => 0),
      codeBlocks: t.codeBins.map(() => 0),
      crowd: [],
      codeCrowd: [],
      hardBranchesPerReq: 0,
      mixOverhead: null,
    },
    tuning: [],
  };
}

/** Measures what the clone's own skeleton executes under the workload (a clone with an empty
 *  body, built in a scratch folder) and records it in the profile: the body supplies the rest. */
export async function withSkeleton(
  p: Profile,
  w: Workload,
  say: (msg: string) => void = () => {},
): Promise<Profile> {
  const dir = mkdtempSync(join(tmpdir(), 'twin-skeleton-'));
  try {
    generateClone(skeletonOnly(p), join(dir, 'clone'));
    const binary = buildClone(join(dir, 'clone'));
    say("measuring the clone's skeleton alone under Valgrind (the same sweep)");
    const skeleton = await measurePortable(cloneLaunchSpec(binary, w), w, { mix: true, codeSets: true });
    return { ...p, body: { ...p.body, skeleton } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
