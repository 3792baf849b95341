import type { Command } from 'commander';
import { writeJsonFile } from '../model/index.js';
import { tune } from '../tune/index.js';
import { tuningTable } from '../report/table.js';
import { progress, readProfile, resolveWorkload } from './common.js';

export function registerTune(program: Command): void {
  program
    .command('tune')
    .description('adjust the clone\'s knobs from its measured error, regenerate and rebuild, until within target')
    .argument('<profile>', 'profile JSON (rewritten with the tuned knobs and history unless -o)')
    .requiredOption('-w, --workload <file>', 'workload file')
    .requiredOption('-c, --clone <dir>', 'clone folder to (re)generate')
    .option('-o, --out <file>', 'tuned profile to write')
    .option('--iterations <n>', 'most iterations', (v) => Number(v), 8)
    .option('-q, --quiet', 'no progress lines')
    .action(async (file: string, o: { workload: string; clone: string; out?: string; iterations: number; quiet?: boolean }) => {
      const r = resolveWorkload(o.workload, []);
      const tuned = await tune(readProfile(file), r.workload, o.clone, { maxIterations: o.iterations, progress: progress(o.quiet) });
      writeJsonFile(o.out ?? file, tuned);
      process.stdout.write(tuningTable(tuned) + '\n');
    });
}
