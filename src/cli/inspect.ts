import type { Command } from 'commander';
import { profileSummary, tuningTable } from '../report/table.js';
import { readProfile } from './common.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('summarize a profile and its tuning history')
    .argument('<profile>', 'profile JSON')
    .option('--json', 'print the validated profile as JSON')
    .action((file: string, o: { json?: boolean }) => {
      const p = readProfile(file);
      process.stdout.write(o.json ? JSON.stringify(p, null, 2) + '\n' : `${profileSummary(p)}\n\n${tuningTable(p)}\n`);
    });
}
