/**
 * node dist/bench/table.js [RESULTS [README]]: rewrites the README's fidelity section, the
 * lines between `<!-- fidelity:start -->` and `<!-- fidelity:end -->`, from the results file
 * `npm run bench` writes (bench/results.json by default), so that the figures a newcomer reads
 * are the last bench's. Exit code 2 and one line on stderr when the file is missing or
 * malformed, or the README has no markers; the README is then left as it was.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One comparison row: original and clone measured in the same run. */
export interface Row {
  metric: string;
  /** Requests/s, or null for a load-independent metric. */
  load: number | null;
  original: number | null;
  clone: number | null;
}

/** A target the bench cloned and validated. */
export interface TargetResult {
  target: string;
  seconds: { total: number; profiling: number | null; tuning: number | null; validation: number | null };
  tuningIterations: number;
  trims: number;
  /** Null in results of a bench that predates the verdict. */
  verdict: { holds: boolean; failing: string[] } | null;
  rows: Row[];
  /** The run that measured it, where a later run on other targets kept it. */
  run?: Run;
}

/** A bench run: its commit, date and the seed of its random geometries. */
export interface Run {
  commit: string;
  date: string;
  randomSeed?: number;
}

/** A target the bench could not clone: its one-line error. */
export interface TargetError {
  target: string;
  error: string;
}

export interface BenchResults {
  date: string;
  commit: string;
  machine: { cpus: number; arch: string };
  /** The seed the random geometries were drawn from, where the bench drew some. */
  randomSeed?: number;
  results: (TargetResult | TargetError)[];
}

/** A results file or README this script refuses; the message is one line. */
export class TableError extends Error {}

export const START = '<!-- fidelity:start -->';
export const END = '<!-- fidelity:end -->';

/** The cache columns, by their metric's name after `sim.<platform>.`. */
const CACHES = ['I1', 'D1', 'L2', 'LLC', 'branch'] as const;

/** Below this many misses per 1,000 instructions an original's figure is too small for a
 *  relative error to mean much (0.02 against 0.01 is +100%): both figures are shown. */
const SMALL_MPKI = 1;

// ---------------------------------------------------------------------------------------
// Reading results.json

function describe(v: unknown): string {
  const s = v === undefined ? 'nothing' : JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function fail(path: string, expected: string, got: unknown): never {
  throw new TableError(`${path}: expected ${expected}, got ${describe(got)}`);
}

function object(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'an object', v);
  return v as Record<string, unknown>;
}

function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, 'a list', v);
  return v;
}

function string(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '') fail(path, 'a string', v);
  return v;
}

function number(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'a number', v);
  return v;
}

function numberOrNull(v: unknown, path: string): number | null {
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'a number or null', v);
  return v;
}

function isoDate(v: unknown, path: string): string {
  const date = string(v, path);
  if (Number.isNaN(Date.parse(date))) fail(path, 'an ISO date', date);
  return date;
}

/** A failing figure: a metric name, or a row-like `{metric, load}`. */
function failing(v: unknown, path: string): string {
  if (typeof v === 'string') return v;
  const o = object(v, path);
  const load = numberOrNull(o.load ?? null, `${path}.load`);
  return `${string(o.metric, `${path}.metric`)}${load === null ? '' : `@${load}`}`;
}

function targetResult(v: unknown, path: string): TargetResult | TargetError {
  const o = object(v, path);
  const target = string(o.target, `${path}.target`);
  if (o.error !== undefined) return { target, error: string(o.error, `${path}.error`) };
  const s = object(o.seconds, `${path}.seconds`);
  const verdict = o.verdict === undefined ? null : object(o.verdict, `${path}.verdict`);
  if (verdict && typeof verdict.holds !== 'boolean')
    fail(`${path}.verdict.holds`, 'true or false', verdict.holds);
  const run =
    o.commit === undefined
      ? {}
      : {
          run: {
            commit: string(o.commit, `${path}.commit`),
            date: isoDate(o.date, `${path}.date`),
            ...(o.randomSeed === undefined ? {} : { randomSeed: number(o.randomSeed, `${path}.randomSeed`) }),
          },
        };
  return {
    ...run,
    target,
    seconds: {
      total: number(s.total, `${path}.seconds.total`),
      profiling: numberOrNull(s.profiling, `${path}.seconds.profiling`),
      tuning: numberOrNull(s.tuning, `${path}.seconds.tuning`),
      validation: numberOrNull(s.validation, `${path}.seconds.validation`),
    },
    tuningIterations: number(o.tuningIterations, `${path}.tuningIterations`),
    trims: number(o.trims, `${path}.trims`),
    verdict: verdict && {
      holds: verdict.holds as boolean,
      failing: array(verdict.failing, `${path}.verdict.failing`).map((f, i) =>
        failing(f, `${path}.verdict.failing[${i}]`),
      ),
    },
    rows: array(o.rows, `${path}.rows`).map((r, i) => {
      const x = object(r, `${path}.rows[${i}]`);
      const at = `${path}.rows[${i}]`;
      return {
        metric: string(x.metric, `${at}.metric`),
        load: numberOrNull(x.load, `${at}.load`),
        original: numberOrNull(x.original, `${at}.original`),
        clone: numberOrNull(x.clone, `${at}.clone`),
      };
    }),
  };
}

/** The bench's results from the text of results.json; a TableError names the first field
 *  that is wrong (`name: path: expected …, got …`). */
export function parseResults(text: string, name = 'results.json'): BenchResults {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new TableError(`${name}: not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  try {
    const o = object(data, 'the file');
    const date = isoDate(o.date, 'date');
    const machine = object(o.machine, 'machine');
    const results = array(o.results, 'results').map((r, i) => targetResult(r, `results[${i}]`));
    if (!results.length) fail('results', 'at least one target', o.results);
    return {
      date,
      commit: string(o.commit, 'commit'),
      machine: { cpus: number(machine.cpus, 'machine.cpus'), arch: string(machine.arch, 'machine.arch') },
      ...(o.randomSeed === undefined ? {} : { randomSeed: number(o.randomSeed, 'randomSeed') }),
      results,
    };
  } catch (e) {
    if (e instanceof TableError) throw new TableError(`${name}: ${e.message}`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Rendering

function isError(r: TargetResult | TargetError): r is TargetError {
  return 'error' in r;
}

/** The clone's relative error in percent, signed, or a dash where it means nothing. */
export function relativeCell(original: number | null, clone: number | null): string {
  if (original === null || clone === null || original === 0) return '–';
  const e = ((clone - original) / original) * 100;
  const digits = Math.abs(e) >= 100 ? 0 : 1;
  const s = Math.abs(e).toFixed(digits);
  return `${Number(s) === 0 ? '' : e > 0 ? '+' : '-'}${s}%`;
}

/** Three significant digits, without an exponent below 1,000. */
export function sig3(x: number): string {
  if (x === 0) return '0';
  if (Math.abs(x) >= 1000) return String(Math.round(x));
  return String(Number(x.toPrecision(3)));
}

/** A cache or branch cell: the relative error, or `original→clone` where the original misses
 *  less than once per 1,000 instructions. */
export function mpkiCell(original: number | null, clone: number | null): string {
  if (original === null || clone === null) return '–';
  if (original < SMALL_MPKI) return `${sig3(original)}→${sig3(clone)}`;
  return relativeCell(original, clone);
}

/** Platforms in the order their rows first appear (`sim.<platform>.…`). */
export function platformsOf(rows: Row[]): string[] {
  const seen: string[] = [];
  for (const r of rows) {
    const m = /^sim\.([^.]+)\./.exec(r.metric);
    if (m && !seen.includes(m[1])) seen.push(m[1]);
  }
  return seen;
}

/** The clone's CPU time per request over the original's, paired round by round, at each
 *  load, lowest first. */
export function pairedRatioCell(rows: Row[]): string {
  const paired = rows
    .filter((r) => r.metric === 'cpu.paired_ratio' && r.load !== null && r.clone !== null)
    .sort((a, b) => a.load! - b.load!);
  return paired.length ? paired.map((r) => r.clone!.toFixed(2)).join(' ') : '–';
}

/** Random geometries (`random-SEED-K`) are folded into one row: a README reads a summary. */
const isRandom = (platform: string) => platform.startsWith('random-');

/** One cache over the random geometries: the mean of the relative errors' sizes and, after
 *  a slash, the worst, over those where the original misses at least SMALL_MPKI; else how
 *  many of them both sides miss less. */
export function randomCell(pairs: { original: number | null; clone: number | null }[]): string {
  const big = pairs.filter((x) => x.original !== null && x.clone !== null && x.original >= SMALL_MPKI);
  if (!big.length) return pairs.length ? `all < ${SMALL_MPKI}` : '–';
  const errs = big.map((x) => (x.clone! - x.original!) / x.original!);
  const mean = (100 * errs.reduce((a, e) => a + Math.abs(e), 0)) / errs.length;
  const worst = errs.reduce((a, e) => (Math.abs(e) > Math.abs(a) ? e : a), 0);
  return `${mean.toFixed(mean >= 100 ? 0 : 1)}/${relativeCell(1, 1 + worst)}`;
}

/** The largest gap between the two sides' share of one instruction class, in percentage
 *  points, with the class. */
export function mixGapCell(rows: Row[]): string {
  let worst: { gap: number; cls: string } | null = null;
  for (const r of rows) {
    const m = /^mix\.(.+)\.share$/.exec(r.metric);
    if (!m || r.original === null || r.clone === null) continue;
    const gap = Math.abs(r.clone - r.original) * 100;
    if (!worst || gap > worst.gap) worst = { gap, cls: m[1] };
  }
  return worst ? `${worst.gap.toFixed(1)} (${worst.cls})` : '–';
}

/** A Markdown table with its columns padded, the first two left-aligned, the rest right. */
function markdownTable(headers: string[], rows: string[][], leftColumns: number): string[] {
  const widths = headers.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < leftColumns ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)];
}

/** The fidelity table: one row per target and shipped platform, and one for the random
 *  geometries together (`randomCell`). */
export function fidelityTable(results: BenchResults): string[] {
  const rows: string[][] = [];
  for (const r of results.results) {
    if (isError(r)) continue;
    const value = (metric: string) => r.rows.find((x) => x.metric === metric && x.load === null) ?? null;
    const cell = (p: string, c: string) => {
      const x = value(`sim.${p}.${c}.mpki`);
      return { original: x?.original ?? null, clone: x?.clone ?? null };
    };
    const insnsCell = (p: string) => {
      const x = value(`sim.${p}.insns.per_req`);
      return relativeCell(x?.original ?? null, x?.clone ?? null);
    };
    const random = platformsOf(r.rows).filter(isRandom);
    const rowsOf = [
      ...platformsOf(r.rows)
        .filter((p) => !isRandom(p))
        .map((p) => [
          p,
          insnsCell(p),
          ...CACHES.map((c) => {
            const x = cell(p, c);
            return mpkiCell(x.original, x.clone);
          }),
        ]),
      ...(random.length
        ? [
            [
              `${random.length} random`,
              insnsCell(random[0]),
              ...CACHES.map((c) => (c === 'branch' ? '' : randomCell(random.map((p) => cell(p, c))))),
            ],
          ]
        : []),
    ];
    rowsOf.forEach((row, i) =>
      rows.push([
        i === 0 ? r.target : '',
        ...row,
        i === 0 ? pairedRatioCell(r.rows) : '',
        i === 0 ? mixGapCell(r.rows) : '',
      ]),
    );
  }
  return markdownTable(
    ['target', 'platform', 'insns/req', 'I1', 'D1', 'L2', 'LLC', 'branch', 'CPU ratios', 'mix gap'],
    rows,
    2,
  );
}

/** Where the time of each target's `twin clone` went, in seconds. */
export function timeTable(results: BenchResults): string[] {
  const s = (x: number | null) => (x === null ? '–' : String(Math.round(x)));
  const rows = results.results
    .filter((r): r is TargetResult => !isError(r))
    .map((r) => [
      r.target,
      s(r.seconds.total),
      s(r.seconds.profiling),
      s(r.seconds.tuning),
      s(r.seconds.validation),
      String(r.tuningIterations),
      String(r.trims),
    ]);
  return markdownTable(
    ['target', 'total s', 'profiling s', 'tuning s', 'validation s', 'iterations', 'trims'],
    rows,
    1,
  );
}

function listed(items: string[], most = 4): string {
  return items.length <= most
    ? items.join(', ')
    : `${items.slice(0, most).join(', ')} and ${items.length - most} more`;
}

const dayOf = (date: string) => new Date(date).toISOString().slice(0, 10);

/** The runs the results come from (a commit on a day), each with its targets (shifts folded
 *  into theirs), in the order they first appear; a result without its own run is the file's. */
export function runsOf(results: BenchResults): { run: Run; targets: string[] }[] {
  const file: Run = { commit: results.commit, date: results.date, randomSeed: results.randomSeed };
  const runs: { run: Run; targets: string[] }[] = [];
  for (const r of results.results) {
    const run = ('run' in r && r.run) || file;
    let group = runs.find((g) => g.run.commit === run.commit && dayOf(g.run.date) === dayOf(run.date));
    if (!group) runs.push((group = { run, targets: [] }));
    const base = r.target.split(',')[0];
    if (!group.targets.includes(base)) group.targets.push(base);
  }
  return runs;
}

/** The README's fidelity section, markers excluded. */
export function render(results: BenchResults): string {
  const done = results.results.filter((r): r is TargetResult => !isError(r));
  const broken = results.results.filter(isError);
  const held = done.filter((r) => r.verdict?.holds).map((r) => r.target);
  const missed = done.filter((r) => r.verdict && !r.verdict.holds);
  const unjudged = done.filter((r) => !r.verdict).map((r) => r.target);
  const verdict = [
    held.length ? `Fidelity targets met by ${held.join(', ')}.` : '',
    ...missed.map(
      (r) =>
        `${r.target} misses ${r.verdict!.failing.length ? listed(r.verdict!.failing.map((f) => `\`${f}\``)) : 'a target'}.`,
    ),
    unjudged.length
      ? `No verdict recorded for ${unjudged.join(', ')}: read the cells against the targets.`
      : '',
    ...broken.map((r) => `${r.target} was not measured: ${r.error}`),
  ].filter(Boolean);
  const runs = runsOf(results);
  const seeds = [...new Set(runs.map((r) => r.run.randomSeed ?? 'unrecorded'))].join(', ');
  const when =
    runs.length === 1
      ? ` at commit \`${runs[0].run.commit}\` on ${dayOf(runs[0].run.date)}`
      : ': ' +
        runs.map((r) => `${listed(r.targets, 3)} at \`${r.run.commit}\` on ${dayOf(r.run.date)}`).join('; ');
  return [
    `Measured by \`npm run bench\`${when}, ` +
      `${results.machine.cpus} CPUs (${results.machine.arch}); original and clone in the same run.`,
    '',
    ...fidelityTable(results),
    '',
    "Cells: the clone's error relative to the original; `original→clone` in misses per 1,000 instructions",
    `where the original misses less than once per 1,000. Random geometries (seed ${seeds},`,
    "never tuned on): the mean size of the errors / the worst. CPU ratios: the clone's CPU time a request",
    "over the original's, paired round by round, at each load. Mix gap: the largest gap in a class's share, pp.",
    ...(verdict.length ? ['', ...verdict.map((v) => `- ${v}`)] : []),
    '',
    ...timeTable(results),
  ].join('\n');
}

/** The README with the lines between the markers replaced by `block`; everything else is
 *  kept byte for byte. */
export function rewrite(readme: string, block: string): string {
  const s = readme.indexOf(START);
  const e = readme.indexOf(END);
  if (s < 0 || e < s || readme.indexOf(START, s + 1) >= 0 || readme.indexOf(END, e + 1) >= 0) {
    throw new TableError(`expected one ${START} line and, after it, one ${END} line`);
  }
  return `${readme.slice(0, s + START.length)}\n${block.trimEnd()}\n${readme.slice(e)}`;
}

/** Writes to a temporary name beside the file, then renames: a reader sees the old README or
 *  the new one, never half of one. */
function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // Nothing was written.
    }
    throw new TableError(`cannot write ${path}: ${(e as Error).message.split('\n')[0]}`);
  }
}

function readText(path: string, missing: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TableError(
      code === 'ENOENT'
        ? `${path} not found: ${missing}`
        : `cannot read ${path}: ${(e as Error).message.split('\n')[0]}`,
    );
  }
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Rewrites the README from the results file; returns the exit code. */
export function main(args: string[]): number {
  const resultsPath = resolve(args[0] ?? join(ROOT, 'bench/results.json'));
  const readmePath = resolve(args[1] ?? join(ROOT, 'README.md'));
  try {
    const results = parseResults(readText(resultsPath, 'run `npm run bench` first'), resultsPath);
    const readme = readText(readmePath, 'give the README to rewrite');
    let next: string;
    try {
      next = rewrite(readme, render(results));
    } catch (e) {
      if (e instanceof TableError) throw new TableError(`${readmePath}: ${e.message}`);
      throw e;
    }
    if (next !== readme) writeAtomically(readmePath, next);
    process.stdout.write(`${readmePath}: fidelity section from ${resultsPath} (${results.commit})\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof TableError)) throw e;
    process.stderr.write(`table: ${e.message}\n`);
    return 2;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
