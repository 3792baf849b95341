import type { Command } from 'commander';
import { buildClone } from '../generate/build.js';

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description('compile a generated clone folder')
    .argument('<dir>', 'clone folder')
    .option('--json', 'print the result as JSON')
    .action((dir: string, o: { json?: boolean }) => {
      const bin = buildClone(dir);
      process.stdout.write(o.json ? JSON.stringify({ binary: bin }) + '\n' : `built ${bin}\n`);
    });
}
