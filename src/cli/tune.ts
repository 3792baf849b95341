import type { Command } from 'commander';
import { readProfile, writeJsonFile } from '../model/index.js';
import { progress } from '../report/progress.js';
import { tuningSummary } from '../report/table.js';
import { tune, TUNE_ITERATIONS } from '../tune/index.js';
import { iterationsOf, resolveWorkload } from './common.js';

export function registerTune(program: Command): void {
  program
    .command('tune')
    .description(
      "adjust the clone's knobs from its measured error, regenerate and rebuild, until within target",
    )
    .argument('<profile>', 'profile JSON (rewritten with the tuned knobs and history unless -o)')
    .requiredOption('-w, --workload <file>', 'workload file')
    .requiredOption('-c, --clone <dir>', 'clone folder to (re)generate')
    .option('-o, --out <file>', 'tuned profile to write')
    .option('--iterations <n>', 'most iterations', (v) => iterationsOf(v), TUNE_ITERATIONS)
    .option('-q, --quiet', 'no progress lines')
    .option('-v, --verbose', 'every step as a line of its own')
    .action(
      async (
        file: string,
        o: {
          workload: string;
          clone: string;
          out?: string;
          iterations: number;
          quiet?: boolean;
          verbose?: boolean;
        },
      ) => {
        const r = resolveWorkload(o.workload, []);
        const p = progress({ quiet: o.quiet, verbose: o.verbose });
        p.stage('tune', 'generating, building and tuning the clone');
        const tuned = await tune(readProfile(file), r.workload, o.clone, {
          maxIterations: o.iterations,
          progress: p.step,
        });
        p.end();
        writeJsonFile(o.out ?? file, tuned);
        process.stdout.write(tuningSummary(tuned) + '\n');
      },
    );
}
