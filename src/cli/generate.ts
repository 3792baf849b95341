import type { Command } from 'commander';
import { generateClone } from '../generate/index.js';
import { readProfile } from '../model/index.js';

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('write the C sources and Makefile of a clone from a profile')
    .argument('<profile>', 'profile JSON')
    .requiredOption('-o, --out <dir>', 'clone folder to write')
    .option('--json', 'print the result as JSON')
    .action((file: string, o: { out: string; json?: boolean }) => {
      generateClone(readProfile(file), o.out);
      process.stdout.write(
        o.json ? JSON.stringify({ clone: o.out }) + '\n' : `wrote ${o.out}/clone.c, Makefile and runtime/\n`,
      );
    });
}
