#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isTwinError } from '../model/index.js';
import { stopAll } from '../collect/children.js';
import { registerProfile } from './profile.js';
import { registerGenerate } from './generate.js';
import { registerBuild } from './build.js';
import { registerValidate } from './validate.js';
import { registerTune } from './tune.js';
import { registerClone } from './clone.js';
import { registerSchema } from './schema.js';
import { registerInspect } from './inspect.js';

const program = new Command()
  .name('twin')
  .description('Clones networked servers into synthetic C programs that behave the same under load')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

for (const register of [
  registerProfile,
  registerGenerate,
  registerBuild,
  registerValidate,
  registerTune,
  registerClone,
  registerInspect,
  registerSchema,
])
  register(program);

async function fail(message: string): Promise<never> {
  await stopAll();
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  process.stderr.write(`twin: ${message}\n`);
  process.exit(2);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void fail(`interrupted (${sig})`));

try {
  await program.parseAsync(process.argv);
  await stopAll();
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.exitCode === 0) process.exit(0);
    await stopAll();
    process.exit(2);
  }
  if (isTwinError(e)) await fail(e.message);
  await stopAll();
  throw e;
}
