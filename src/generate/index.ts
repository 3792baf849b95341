import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TwinError, type Profile } from '../model/index.js';
import { bodyPlan, type BodyPlan } from '../synth/body.js';
import { chainOf } from '../synth/layout.js';
import { emitChain } from './chain.js';
import { CLONE_MAKEFILE, emitClone } from './clone.js';

export const RUNTIME_DIR = fileURLToPath(new URL('../../../runtime/', import.meta.url));

export function profileDigest(p: Profile): string {
  return createHash('sha256').update(JSON.stringify(p)).digest('hex').slice(0, 16);
}

/** Writes the clone's sources (clone.c, chain.c, Makefile, the runtime, its profile) into
 *  `outDir`, whole or not at all: a sibling temporary folder renamed into place. Returns the
 *  body's plan, made once here. */
export function generateClone(p: Profile, outDir: string): BodyPlan {
  const out = resolve(outDir);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'runtime'), { recursive: true });
  try {
    const plan = bodyPlan(p);
    const chain = chainOf(p, plan);
    writeFileSync(join(tmp, 'clone.c'), emitClone(p, plan, chain, profileDigest(p)));
    writeFileSync(join(tmp, 'chain.c'), emitChain(chain, plan.blockUnits));
    writeFileSync(join(tmp, 'Makefile'), CLONE_MAKEFILE);
    writeFileSync(join(tmp, 'profile.json'), JSON.stringify(p, null, 2) + '\n');
    for (const f of readdirSync(RUNTIME_DIR)) {
      if (/\.(c|h)$/.test(f)) cpSync(join(RUNTIME_DIR, f), join(tmp, 'runtime', f));
    }
    if (existsSync(out)) {
      if (!existsSync(join(out, 'clone.c')))
        throw new TwinError(`${outDir} exists and is not a clone folder: pick another output folder`);
      rmSync(out, { recursive: true, force: true });
    }
    renameSync(tmp, out);
    return plan;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
