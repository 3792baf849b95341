import type { Command } from 'commander';
import { writeJsonFile, TwinError } from '../model/index.js';
import { profileTarget } from '../profile/index.js';
import { profileSummary } from '../report/table.js';
import { progress, resolveWorkload, serviceName } from './common.js';
import { withSkeleton } from '../tune/index.js';

export function registerProfile(program: Command): void {
  program
    .command('profile')
    .description('run the target under its workload and write its profile')
    .requiredOption('-w, --workload <file>', 'workload file (examples/*/workload.yaml)')
    .option('-o, --out <file>', 'profile to write', 'profile.json')
    .option('--name <name>', 'service name recorded in the profile')
    .option('--port <n>', 'port for the target (default: a free one); with --pid, the port it listens on', (v) => parsePort(v))
    .option('--pid <pid>', 'attach to this running target instead of starting one (needs --port)', (v) => Number(v))
    .option('--json', 'print the profile as JSON on stdout')
    .option('-q, --quiet', 'no progress lines')
    .argument('[command...]', 'target command line after --, replacing the workload\'s')
    .action(async (command: string[], o: { workload: string; out: string; name?: string; port?: number; pid?: number; json?: boolean; quiet?: boolean}) => {
      const { workload, spec } = resolveWorkload(o.workload, command, o.pid !== undefined);
      const say = progress(o.quiet || o.json);
      const found = await profileTarget(workload, spec, { name: serviceName(o.name, workload), port: o.port, attachPid: o.pid, progress: say });
      const p = await withSkeleton(found, workload, say);
      writeJsonFile(o.out, p);
      if (o.json) process.stdout.write(JSON.stringify(p, null, 2) + '\n');
      else process.stdout.write(`${profileSummary(p)}\nwrote ${o.out}\n`);
    });
}

export function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new TwinError(`--port ${v} is not a port number (1-65535)`);
  return n;
}
