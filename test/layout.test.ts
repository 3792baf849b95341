import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** A file's folder under src/ (`pipeline` for src/pipeline.ts). */
const folderOf = (file: string) => {
  const r = relative(SRC, file).split('/');
  return r.length > 1 ? r[0] : r[0].replace(/\.ts$/, '');
};

/** Each of the project's imports of a file: the folder it imports from. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gm)].map((m) =>
    folderOf(resolve(dirname(file), m[1].replace(/\.js$/, '.ts'))),
  );
}

/** What each folder may import besides itself: downward only (cli → pipeline → tune →
 *  {generate, measure, profile} → {synth, collect} → model). */
const ALLOWED: Record<string, string[]> = {
  model: [],
  util: [],
  collect: ['model', 'util'],
  synth: ['model'],
  generate: ['model', 'synth'],
  profile: ['model', 'collect', 'util'],
  measure: ['model', 'collect', 'util'],
  tune: ['model', 'collect', 'synth', 'generate'],
  report: ['model'],
  pipeline: ['model', 'collect', 'generate', 'measure', 'profile', 'report', 'tune'],
  cli: ['model', 'collect', 'pipeline', 'report', 'tune', 'generate'],
};

test('stages import only downward: profile and measure never each other, nothing the CLI, the model nothing', () => {
  const wrong: string[] = [];
  for (const f of sources(SRC)) {
    const from = folderOf(f);
    assert.ok(
      ALLOWED[from],
      `${relative(SRC, f)} is in a folder the layout does not know: add it to ALLOWED`,
    );
    for (const to of importsOf(f))
      if (to !== from && !ALLOWED[from].includes(to)) wrong.push(`${relative(SRC, f)} imports ${to}`);
  }
  assert.deepEqual(wrong, []);
});

test('the import check sees imports: the CLI imports the pipeline, the pipeline the tuner', () => {
  const all = sources(SRC);
  const edges = new Set(all.flatMap((f) => importsOf(f).map((to) => `${folderOf(f)}->${to}`)));
  for (const e of [
    'cli->pipeline',
    'pipeline->tune',
    'tune->generate',
    'profile->collect',
    'measure->collect',
  ])
    assert.ok(edges.has(e), e);
});

test('every source file holds one job: at most 400 lines', () => {
  const long = sources(SRC)
    .map((f) => ({ f: relative(SRC, f), n: readFileSync(f, 'utf8').split('\n').length }))
    .filter((x) => x.n > 400);
  assert.deepEqual(long, []);
});
