import type { Command } from 'commander';
import { join } from 'node:path';
import { clonePipeline } from '../pipeline.js';
import { TUNE_ITERATIONS } from '../tune/index.js';
import { progress } from '../report/progress.js';
import { comparisonTable, profileSummary, tuningSummary, verdictLine } from '../report/table.js';
import {
  collect,
  defaultOut,
  iterationsOf,
  parsePort,
  parseSeed,
  platformsOf,
  resolveWorkload,
  serviceName,
} from './common.js';

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
    .option('--tune-iterations <n>', 'most tuning iterations', (v) => iterationsOf(v), TUNE_ITERATIONS)
    .option('--seed <n>', "validation's load seed (default 2; profiling and tuning send 1)", (v) =>
      parseSeed(v),
    )
    .option('--saturation', "find each side's saturation throughput (p99 under the workload's saturationP99)")
    .option('-q, --quiet', 'no progress lines')
    .option('-v, --verbose', 'every step as a line of its own')
    .argument('[command...]', "target command line after --, replacing the workload's")
    .action(
      async (
        command: string[],
        o: {
          workload: string;
          out?: string;
          json?: string;
          name?: string;
          port?: number;
          quiet?: boolean;
          verbose?: boolean;
          platform?: string[];
          tuneIterations: number;
          seed?: number;
          saturation?: boolean;
        },
      ) => {
        const platforms = platformsOf(o.platform);
        const r = resolveWorkload(o.workload, command);
        const out = o.out ?? defaultOut(o.workload);
        const p = progress({ quiet: o.quiet, verbose: o.verbose });
        const show = (what: 'profile' | 'tuned', profile: Parameters<typeof profileSummary>[0]) =>
          p.print(`${what === 'profile' ? profileSummary(profile) : tuningSummary(profile)}\n`);
        const { comparison, stages } = await clonePipeline(
          r,
          {
            name: serviceName(o.name, r.workload),
            port: o.port,
            out,
            json: o.json,
            platforms,
            tuneIterations: o.tuneIterations,
            seed: o.seed,
            saturation: o.saturation,
            show,
          },
          p,
        );
        process.stdout.write(comparisonTable(comparison) + '\n\n');
        const total = stages.reduce((a, s) => a + s.seconds, 0);
        const times = stages.map((s) => `${s.stage} ${s.seconds.toFixed(0)}`).join(', ');
        const holds = comparison.verdict?.holds ?? false;
        if (comparison.verdict) process.stdout.write(verdictLine(comparison.verdict) + '\n');
        process.stdout.write(`clone in ${join(out, 'clone')}; ${times} s\n`);
        process.stdout.write(
          `${holds ? 'done' : 'not done: the clone misses its targets'} in ${total.toFixed(0)} s\n`,
        );
        if (!holds) process.exitCode = 3;
      },
    );
}
