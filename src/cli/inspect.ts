import type { Command } from 'commander';
import { readProfile } from '../model/index.js';
import { profileSummary, tuningSummary, tuningTable } from '../report/table.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('summarize a profile and its tuning history')
    .argument('<profile>', 'profile JSON')
    .option('--tuning', 'the whole tuning history, every figure of every iteration')
    .option('--json', 'print the validated profile as JSON')
    .action((file: string, o: { json?: boolean; tuning?: boolean }) => {
      const p = readProfile(file);
      if (o.json) process.stdout.write(JSON.stringify(p, null, 2) + '\n');
      else if (o.tuning) process.stdout.write(`${tuningTable(p)}\n`);
      else process.stdout.write(`${profileSummary(p)}\n\n${tuningSummary(p)}\n`);
    });
}
