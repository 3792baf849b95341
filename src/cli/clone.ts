import type { Command } from 'commander';
import { join } from 'node:path';
import { writeJsonFile } from '../model/index.js';
import { profileTarget } from '../profile/index.js';
import { tune, withSkeleton } from '../tune/index.js';
import { profileSummary, tuningTable } from '../report/table.js';
import { defaultOut, progress, resolveWorkload, serviceName } from './common.js';
import { parsePort } from './profile.js';
import { collect, runValidate } from './validate.js';
import { DEFAULT_PLATFORM, loadPlatform } from '../profile/platforms.js';
import { SWEEP } from '../profile/valgrind.js';
import { validationSeconds } from '../measure/validate.js';

/** Validation's estimated time (`validationSeconds`) times this margin is kept for it. */
const VALIDATION_MARGIN = 1.05;

export function registerClone(program: Command): void {
  program
    .command('clone')
    .description('profile, generate, build, tune and validate in one go')
    .requiredOption('-w, --workload <file>', 'workload file')
    .option('--out <dir>', 'output folder (profile.json, clone/, comparison.json)')
    .option('--json <file>', 'write the comparison as JSON')
    .option('--name <name>', 'service name recorded in the profile')
    .option('--port <n>', 'port for the target while profiled', (v) => parsePort(v))
    .option('--platform <name|file>', 'simulated platform to validate on, repeatable', collect)
    .option('--tune-iterations <n>', 'most tuning iterations', (v) => Number(v), 8)
    .option('--time-budget <s>', 'seconds the whole clone may take: tuning stops in time for validation', (v) => Number(v), 870)
    .option('-q, --quiet', 'no progress lines')
    .argument('[command...]', 'target command line after --, replacing the workload\'s')
    .action(async (command: string[], o: { workload: string; out?: string; json?: string; name?: string; port?: number; quiet?: boolean; platform?: string[]; tuneIterations: number; timeBudget: number }) => {
      const t0 = Date.now();
      const platforms = (o.platform ?? [DEFAULT_PLATFORM]).map(loadPlatform);
      const say = progress(o.quiet);
      const r = resolveWorkload(o.workload, command);
      const out = o.out ?? defaultOut(o.workload);
      const name = serviceName(o.name, r.workload);
      const profiled = await profileTarget(r.workload, r.spec, { name, port: o.port, progress: say });
      // The skeleton's sweep is SWEEP.length pairs of Valgrind runs of a clone, two runs at a
      // time: what one of validation's pairs takes, its build included as a margin.
      const t1 = Date.now();
      const profile = await withSkeleton(profiled, r.workload, say);
      const pairS = (Date.now() - t1) / 1000 / SWEEP.length;
      writeJsonFile(join(out, 'profile.json'), profile);
      process.stdout.write(profileSummary(profile) + '\n\n');
      say('generating, building and tuning the clone');
      const deadline = t0 + o.timeBudget * 1000 - VALIDATION_MARGIN * 1000 * validationSeconds(r.workload, platforms.length, pairS);
      const tuned = await tune(profile, r.workload, join(out, 'clone'), { progress: say, maxIterations: o.tuneIterations, deadline });
      writeJsonFile(join(out, 'profile.json'), tuned);
      process.stdout.write(tuningTable(tuned) + '\n\n');
      say('validating: original and clone side by side');
      await runValidate(r, name, join(out, 'clone'), { json: o.json ?? join(out, 'comparison.json'), quiet: o.quiet, platform: o.platform, say });
      process.stdout.write(`\ndone in ${((Date.now() - t0) / 1000).toFixed(0)} s; clone in ${join(out, 'clone')}\n`);
    });
}
