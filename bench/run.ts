/**
 * npm run bench [-- TARGET…]: clones each example target end to end and writes, as JSON,
 * how long each stage took, how many tuning iterations it needed, and the clone-to-original
 * ratios of the comparison on the three shipped platforms (all measured in this run). Output: bench/results.json and stdout.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');
const targets = process.argv.slice(2).length ? process.argv.slice(2) : ['memcached', 'redis', 'nginx'];

interface Row { metric: string; load: number | null; original: number | null; clone: number | null }

const results = [];
for (const target of targets) {
  const out = mkdtempSync(join(tmpdir(), `twin-bench-${target}-`));
  const t0 = Date.now();
  const platforms = ['skylake-sp', 'haswell-ep', 'graviton2'].flatMap((p) => ['--platform', p]);
  const r = spawnSync(process.execPath, [TWIN, 'clone', '--workload', join(ROOT, `examples/${target}/workload.yaml`), '--out', out, ...platforms], { encoding: 'utf8' });
  const total = (Date.now() - t0) / 1000;
  if (r.status !== 0) {
    results.push({ target, error: r.stderr.trim().split('\n').pop() });
    continue;
  }
  // Stage times from the progress lines ([twin  Ns] …).
  const marks = [...r.stderr.matchAll(/\[twin\s+(\d+)s\] (.*)/g)].map((m) => ({ t: Number(m[1]), msg: m[2] }));
  const at = (re: RegExp) => marks.find((m) => re.test(m.msg))?.t ?? null;
  const profile = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
  const comparison = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8'));
  const trims = profile.tuning.filter((t: { trim?: boolean }) => t.trim).length;
  const ratios = Object.fromEntries(
    (comparison.rows as Row[])
      .filter((x) => x.original && x.clone !== null)
      .map((x) => [`${x.metric}${x.load === null ? '' : `@${x.load}`}`, Math.round((x.clone! / x.original!) * 1e4) / 1e4]),
  );
  results.push({
    target,
    seconds: {
      total,
      profiling: at(/generating, building and tuning/),
      tuning: (at(/^validating/) ?? 0) - (at(/generating, building and tuning/) ?? 0),
      validation: total - (at(/^validating/) ?? 0),
    },
    // Iterations measure the whole sweep; trims of the kept one, one platform's run.
    tuningIterations: profile.tuning.length - trims,
    trims,
    ratios,
  });
}
const json = JSON.stringify({ date: new Date().toISOString(), results }, null, 2);
writeFileSync(join(ROOT, 'bench/results.json'), json + '\n');
process.stdout.write(json + '\n');
