import type { Command } from 'commander';
import { join } from 'node:path';
import { writeJsonFile, type Comparison } from '../model/index.js';
import { buildClone } from '../generate/build.js';
import { cloneLaunchSpec, validate } from '../measure/validate.js';
import { comparisonTable } from '../report/table.js';
import { progress, resolveWorkload, type ResolvedWorkload } from './common.js';
import { DEFAULT_PLATFORM, loadPlatform } from '../profile/platforms.js';

export interface ValidateFlags {
  json?: string;
  quiet?: boolean;
  noCpu?: boolean;
  platform?: string[];
  /** Progress printer to continue (its clock keeps running). */
  say?: (msg: string) => void;
}

export const collect = (v: string, prev: string[] = []) => [...prev, v];

export async function runValidate(r: ResolvedWorkload, name: string, cloneDir: string, o: ValidateFlags): Promise<Comparison> {
  const binary = buildClone(cloneDir);
  const { comparison, measurements } = await validate(r.workload, name, r.spec, cloneLaunchSpec(binary, r.workload), {
    progress: o.say ?? progress(o.quiet),
    noCpu: o.noCpu,
    platforms: (o.platform ?? [DEFAULT_PLATFORM]).map(loadPlatform),
  });
  if (o.json) {
    writeJsonFile(o.json, comparison);
    writeJsonFile(join(cloneDir, 'measurements.json'), measurements);
  }
  process.stdout.write(comparisonTable(comparison) + '\n');
  return comparison;
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('measure original and clone in the same run, side by side, at every load point')
    .requiredOption('-w, --workload <file>', 'workload file')
    .requiredOption('-c, --clone <dir>', 'clone folder (built if needed)')
    .option('--json <file>', 'write the comparison as JSON')
    .option('--name <name>', 'target name in the report', 'target')
    .option('--platform <name|file>', 'simulated platform for the Valgrind rows, repeatable (platforms/*.yaml)', collect)
    .option('--no-cpu', 'skip the Valgrind runs')
    .option('-q, --quiet', 'no progress lines')
    .argument('[command...]', 'original\'s command line after --, replacing the workload\'s')
    .action(async (command: string[], o: ValidateFlags & { workload: string; clone: string; name: string; cpu: boolean }) => {
      await runValidate(resolveWorkload(o.workload, command), o.name, o.clone, { ...o, noCpu: !o.cpu });
    });
}
