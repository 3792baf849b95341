import type { Command } from 'commander';
import { join } from 'node:path';
import { writeJsonFile } from '../model/index.js';
import { validateStage } from '../pipeline.js';
import { progress } from '../report/progress.js';
import { comparisonTable, verdictLine } from '../report/table.js';
import { collect, parsePositive, parseSeed, platformsOf, resolveWorkload } from './common.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('measure original and clone in the same run, side by side, at every load point')
    .requiredOption('-w, --workload <file>', 'workload file')
    .requiredOption('-c, --clone <dir>', 'clone folder (built if needed)')
    .option('--json <file>', 'write the comparison as JSON')
    .option('--name <name>', 'target name in the report', 'target')
    .option(
      '--platform <name|file>',
      'simulated platform for the Valgrind rows, repeatable (platforms/*.yaml)',
      collect,
    )
    .option('--no-cpu', 'skip the Valgrind runs')
    .option('--workers <n>', "the clone's pool of threads or processes (./clone --workers N)", (v) =>
      parsePositive(v, '--workers'),
    )
    .option('--saturation', "find each side's saturation throughput (p99 under the workload's saturationP99)")
    .option('--seed <n>', 'load seed of both sides (default 2; profiling and tuning send 1)', (v) =>
      parseSeed(v),
    )
    .option('-q, --quiet', 'no progress lines')
    .option('-v, --verbose', 'every step as a line of its own')
    .argument('[command...]', "original's command line after --, replacing the workload's")
    .action(
      async (
        command: string[],
        o: {
          workload: string;
          clone: string;
          name: string;
          cpu: boolean;
          json?: string;
          quiet?: boolean;
          verbose?: boolean;
          platform?: string[];
          seed?: number;
          saturation?: boolean;
          workers?: number;
        },
      ) => {
        const platforms = platformsOf(o.platform);
        const p = progress({ quiet: o.quiet, verbose: o.verbose });
        const { comparison, measurements } = await validateStage(
          resolveWorkload(o.workload, command),
          o.name,
          o.clone,
          { platforms, noCpu: !o.cpu, seed: o.seed, saturation: o.saturation, workers: o.workers },
          p,
        );
        p.end();
        if (o.json) {
          writeJsonFile(o.json, comparison);
          writeJsonFile(join(o.clone, 'measurements.json'), measurements);
        }
        process.stdout.write(comparisonTable(comparison) + '\n\n');
        if (comparison.verdict) process.stdout.write(verdictLine(comparison.verdict) + '\n');
        if (!comparison.verdict?.holds) process.exitCode = 3;
      },
    );
}
