/**
 * npm run bench [-- [--random N] [--seed S] [--load-seed L] [--out FILE] TARGET…]: clones each
 * example target end to end, validating on the three shipped platforms and on N cache
 * geometries (5 by default) drawn from seed S (drawn from the clock unless given, and
 * printed): caches no one tuned to. Writes bench/results.json: each stage's seconds (from the
 * comparison's own record), the tuning iterations and trims, and every comparison row with
 * its original and clone figures and their ratio, all measured in this run, with the commit
 * and machine. `npm run readme` then rewrites the README's fidelity table from it. `--load-seed`
 * sets validation's load seed (default: twin's, held out from tuning's); `--out` writes elsewhere.
 * Targets not named keep their results of the file's last run, each stamped with its own run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { arch, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { numberFlag, targetsOf } from './args.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');
const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => numberFlag(args, name, fallback);
const random = flag('--random', 5);
const seed = flag('--seed', Date.now() % 1_000_000);
const loadSeed = flag('--load-seed', -1);
const outIdx = args.indexOf('--out');
const outFile = outIdx < 0 ? join(ROOT, 'bench/results.json') : resolve(args.splice(outIdx, 2)[1]);
const PLATFORMS = [
  'skylake-sp',
  'haswell-ep',
  'graviton2',
  ...Array.from({ length: random }, (_, k) => `random:${seed}:${k}`),
];
const targets = targetsOf(args);
process.stderr.write(`[bench] platforms: ${PLATFORMS.join(' ')} (random geometries from seed ${seed})\n`);

interface Row {
  metric: string;
  load: number | null;
  original: number | null;
  clone: number | null;
}

const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
// `+`: measured on changes not committed (the results file itself aside).
const commit = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results.json') ? '+' : ''}`;

/** The most a run's stderr (its progress lines) may hold. */
const LOG_MAX = 64 << 20;

const results = [];
for (const target of targets) {
  const out = mkdtempSync(join(tmpdir(), `twin-bench-${target}-`));
  const t0 = Date.now();
  const args = [
    TWIN,
    'clone',
    '--saturation',
    '--workload',
    join(ROOT, `examples/${target}/workload.yaml`),
    '--out',
    out,
  ];
  if (loadSeed >= 0) args.push('--seed', String(loadSeed));
  const r = spawnSync(process.execPath, [...args, ...PLATFORMS.flatMap((p) => ['--platform', p])], {
    encoding: 'utf8',
    maxBuffer: LOG_MAX,
  });
  const total = (Date.now() - t0) / 1000;
  process.stderr.write(
    `[bench] ${target}: ${total.toFixed(0)} s, exit ${r.status} (${logOf(out, 'clone', r)})\n`,
  );
  // 3: the clone ran and missed a fidelity target; its figures are still the bench's.
  if (r.status !== 0 && r.status !== 3) {
    results.push({ target, error: r.stderr.trim().split('\n').pop() });
    continue;
  }
  results.push(resultOf(target, out, total));
  // Workloads other than the profiled one (mix, connections, the server's pool), validated on
  // the clone as it is, without re-profiling: on the first shipped platform.
  for (const { file, label } of shiftsOf(target)) {
    const t1 = Date.now();
    const name = `${target}, ${label}`;
    const jsonFile = join(out, `${label.replaceAll(' ', '-')}.json`);
    const v = [
      TWIN,
      'validate',
      '-q',
      '--saturation',
      '-w',
      file,
      '-c',
      join(out, 'clone'),
      '--json',
      jsonFile,
    ];
    if (loadSeed >= 0) v.push('--seed', String(loadSeed));
    const s = spawnSync(process.execPath, [...v, '--platform', PLATFORMS[0]], {
      encoding: 'utf8',
      maxBuffer: LOG_MAX,
    });
    const seconds = (Date.now() - t1) / 1000;
    process.stderr.write(
      `[bench] ${name}: ${seconds.toFixed(0)} s, exit ${s.status} (${logOf(out, label.replaceAll(' ', '-'), s)})\n`,
    );
    if (s.status !== 0 && s.status !== 3)
      results.push({ target: name, error: s.stderr.trim().split('\n').pop() });
    else results.push(shiftResult(name, jsonFile, seconds));
  }
}

/** Keeps a run's progress lines and verdict (its stderr) beside its output, where a run that
 *  failed part way can be read after; returns the file's path. */
function logOf(out: string, name: string, r: { stderr: string }): string {
  const file = join(out, `${name}.log`);
  writeFileSync(file, r.stderr);
  return file;
}

/** An example's other workloads: `shift.yaml` (its mix shifted) and `shift-WORDS.yaml` (named
 *  by the words, as `shift-connections-16.yaml`: "connections 16"). */
function shiftsOf(target: string): { file: string; label: string }[] {
  const dir = join(ROOT, `examples/${target}`);
  return readdirSync(dir)
    .filter((f) => /^shift(-[a-z0-9]+)*\.yaml$/.test(f))
    .sort()
    .map((f) => ({
      file: join(dir, f),
      label:
        f === 'shift.yaml' ? 'mix shift' : f.slice('shift-'.length, -'.yaml'.length).replaceAll('-', ' '),
    }));
}

/** A comparison's rows and their ratios (clone over original). */
function rowsOf(comparison: { rows: Row[] }) {
  const rows = comparison.rows;
  const ratios = Object.fromEntries(
    rows
      .filter((x) => x.original && x.clone !== null)
      .map((x) => [
        `${x.metric}${x.load === null ? '' : `@${x.load}`}`,
        Math.round((x.clone! / x.original!) * 1e4) / 1e4,
      ]),
  );
  return { rows, ratios };
}

/** A validation of another workload: no profiling or tuning of its own. */
function shiftResult(target: string, file: string, seconds: number) {
  const comparison = JSON.parse(readFileSync(file, 'utf8'));
  return {
    target,
    seconds: { total: seconds, profiling: 0, tuning: 0, validation: seconds },
    tuningIterations: 0,
    trims: 0,
    verdict: comparison.verdict,
    loadSeed: comparison.run.loadSeed,
    tuningSeed: comparison.run.tuningSeed,
    ...rowsOf(comparison),
  };
}

function resultOf(target: string, out: string, total: number) {
  const profile = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8'));
  const comparison = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8'));
  const stage = (name: string) =>
    comparison.run.stages.find((s: { stage: string }) => s.stage === name)?.seconds ?? 0;
  const trims = profile.tuning.filter((t: { trim?: boolean }) => t.trim).length;
  return {
    target,
    seconds: {
      total,
      profiling: stage('profile') + stage('skeleton'),
      tuning: stage('tune'),
      validation: stage('validate'),
    },
    // Iterations measure the whole sweep; trims of the kept one, two sweep points.
    tuningIterations: profile.tuning.length - trims,
    trims,
    verdict: comparison.verdict,
    loadSeed: comparison.run.loadSeed,
    tuningSeed: comparison.run.tuningSeed,
    ...rowsOf(comparison),
  };
}

/** Each result stamped with the run that measured it; a run on some targets keeps the other
 *  targets' results of the file it rewrites (theirs stamped with that file's run), so that
 *  one example can be measured again without the hours of all of them. */
const date = new Date().toISOString();
const stamp = { commit, date, randomSeed: seed };
const kept = previousResults(outFile).filter(
  (r: { target: string }) => !targets.includes(r.target.split(',')[0]),
);
const json = JSON.stringify(
  {
    date,
    commit,
    machine: { cpus: cpus().length, arch: arch() },
    platforms: PLATFORMS,
    randomSeed: seed,
    results: [...kept, ...results.map((r) => ({ ...r, ...stamp }))].sort((a, b) =>
      a.target < b.target ? -1 : a.target > b.target ? 1 : 0,
    ),
  },
  null,
  2,
);
writeFileSync(`${outFile}.tmp`, json + '\n');
renameSync(`${outFile}.tmp`, outFile);
process.stdout.write(json + '\n');

/** The results in the file this run rewrites, each with its run's commit, date and seed;
 *  none where there is no such file or it is not a bench's. */
function previousResults(file: string): { target: string }[] {
  let old;
  try {
    old = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
  if (!Array.isArray(old?.results)) return [];
  return old.results.map((r: { target: string }) => ({
    commit: old.commit,
    date: old.date,
    randomSeed: old.randomSeed,
    ...r,
  }));
}
