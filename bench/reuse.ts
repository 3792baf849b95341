/**
 * npm run bench:reuse [-- [--random N] [--seed S] TARGET…]: the cost and accuracy of
 * twinreuse (one pair of runs, every LRU geometry) against cachegrind (one pair per
 * geometry) on each example target. For every platform (the three shipped and N drawn from
 * seed S, 3 by default), a cachegrind pair with its L2 as last level and one with its LLC;
 * each cache's misses per 1,000 instructions from twinreuse's pair beside them, with the
 * relative error. A second cachegrind pair at the first platform gives the original's own
 * spread from pair to pair, against which the errors read. Seconds are wall time, two runs at a time.
 * Writes bench/reuse.json.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { numberFlag, targetsOf } from './args.js';
import { readYamlFile, Workload, type Platform } from '../src/model/index.js';
import { measureCpu, measureReuse } from '../src/collect/cpu.js';
import { loadPlatform, randomPlatform } from '../src/collect/platforms.js';
import { platformMisses } from '../src/collect/reuse.js';
import { launchSpecFor } from '../src/collect/target.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => numberFlag(args, name, fallback);
const random = flag('--random', 3);
const seed = flag('--seed', Date.now() % 1_000_000);
const platforms: Platform[] = [
  ...['skylake-sp', 'haswell-ep', 'graviton2'].map(loadPlatform),
  ...Array.from({ length: random }, (_, k) => randomPlatform(seed, k)),
];
const targets = targetsOf(args);
const say = (s: string) => process.stderr.write(`[bench:reuse] ${s}\n`);
say(`platforms: ${platforms.map((p) => p.name).join(' ')} (random geometries from seed ${seed})`);

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
const results = [];
for (const target of targets) {
  const file = join(ROOT, `examples/${target}/workload.yaml`);
  const w = readYamlFile(Workload, file, 'workload');
  // Templates and files are read from the workload's folder, as the CLI reads them.
  const spec = launchSpecFor(w, dirname(file));
  let t = Date.now();
  const reuse = await measureReuse(spec, w);
  const reuseS = (Date.now() - t) / 1000;
  say(`${target}: twinreuse pair in ${reuseS.toFixed(0)} s`);
  t = Date.now();
  const cells = [];
  for (const p of platforms) {
    const cg = await measureCpu(spec, w, p, true);
    const misses = platformMisses(reuse, p);
    const mpki = (m: number | null) => (m === null ? null : (1000 * m) / reuse.instructions);
    const predicted = {
      I1: mpki(misses.I1),
      D1: mpki(misses.D1),
      L2: mpki(misses.L2),
      LLC: mpki(misses.LLC),
    };
    const measured = { I1: cg.I1Mpki, D1: cg.D1Mpki, L2: cg.L2Mpki, LLC: cg.LLCMpki };
    for (const level of ['I1', 'D1', 'L2', 'LLC'] as const) {
      const [m, r] = [measured[level], predicted[level]];
      cells.push({
        platform: p.name,
        level,
        cachegrind: m === null ? null : round(m),
        twinreuse: r === null ? null : round(r),
        error: m && r !== null ? round(r / m - 1) : null,
      });
    }
  }
  const cachegrindS = (Date.now() - t) / 1000;
  say(`${target}: ${platforms.length} platforms under cachegrind in ${cachegrindS.toFixed(0)} s`);
  // The original's own spread: the first platform's cachegrind pairs again.
  const again = await measureCpu(spec, w, platforms[0], true);
  const first = cells.filter((c) => c.platform === platforms[0].name);
  const twice = { I1: again.I1Mpki, D1: again.D1Mpki, L2: again.L2Mpki, LLC: again.LLCMpki };
  const spread = Object.fromEntries(
    (['I1', 'D1', 'L2', 'LLC'] as const).map((level) => {
      const [m, c] = [twice[level], first.find((x) => x.level === level)!.cachegrind];
      return [level, m !== null && c ? round(m / c - 1) : null];
    }),
  );
  results.push({
    target,
    seconds: { twinreusePair: round(reuseS, 1), cachegrindPairs: round(cachegrindS, 1) },
    pairs: { twinreuse: 1, cachegrind: 2 * platforms.length },
    spread,
    cells,
  });
}
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
const json = JSON.stringify(
  {
    date: new Date().toISOString(),
    commit,
    machine: { cpus: cpus().length, arch: arch() },
    randomSeed: seed,
    results,
  },
  null,
  2,
);
const out = join(ROOT, 'bench/reuse.json');
writeFileSync(`${out}.tmp`, json + '\n');
renameSync(`${out}.tmp`, out);
process.stdout.write(json + '\n');
