import type { Command } from 'commander';
import { writeJsonFile } from '../model/index.js';
import { profileStages } from '../pipeline.js';
import { progress } from '../report/progress.js';
import { profileSummary } from '../report/table.js';
import { parsePort, resolveWorkload, serviceName } from './common.js';

export function registerProfile(program: Command): void {
  program
    .command('profile')
    .description('run the target under its workload and write its profile')
    .requiredOption('-w, --workload <file>', 'workload file (examples/*/workload.yaml)')
    .option('-o, --out <file>', 'profile to write', 'profile.json')
    .option('--name <name>', 'service name recorded in the profile')
    .option(
      '--port <n>',
      'port for the target (default: a free one); with --pid, the port it listens on',
      (v) => parsePort(v),
    )
    .option('--pid <pid>', 'attach to this running target instead of starting one (needs --port)', (v) =>
      Number(v),
    )
    .option('--json', 'print the profile as JSON on stdout')
    .option('-q, --quiet', 'no progress lines')
    .option('-v, --verbose', 'every step as a line of its own')
    .argument('[command...]', "target command line after --, replacing the workload's")
    .action(
      async (
        command: string[],
        o: {
          workload: string;
          out: string;
          name?: string;
          port?: number;
          pid?: number;
          json?: boolean;
          quiet?: boolean;
          verbose?: boolean;
        },
      ) => {
        const r = resolveWorkload(o.workload, command, o.pid !== undefined);
        const p = progress({ quiet: o.quiet || o.json, verbose: o.verbose });
        const profile = await profileStages(
          r,
          { name: serviceName(o.name, r.workload), port: o.port, attachPid: o.pid },
          p,
        );
        p.end();
        writeJsonFile(o.out, profile);
        if (o.json) process.stdout.write(JSON.stringify(profile, null, 2) + '\n');
        else process.stdout.write(`${profileSummary(profile)}\nwrote ${o.out}\n`);
      },
    );
}
