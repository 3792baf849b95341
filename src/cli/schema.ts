import type { Command } from 'commander';
import { join } from 'node:path';
import { z } from 'zod';
import { Comparison, Measurement, Profile, Workload, writeJsonFile } from '../model/index.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('write the JSON Schema of the profile, measurement, comparison and workload files')
    .option('-o, --out <dir>', 'folder to write into', 'schema')
    .action((o: { out: string }) => {
      const schemas = {
        profile: Profile,
        measurement: Measurement,
        comparison: Comparison,
        workload: Workload,
      };
      for (const [name, s] of Object.entries(schemas))
        writeJsonFile(join(o.out, `${name}.schema.json`), z.toJSONSchema(s, { io: 'input' }));
      process.stdout.write(
        `wrote ${Object.keys(schemas)
          .map((n) => join(o.out, `${n}.schema.json`))
          .join(', ')}\n`,
      );
    });
}
