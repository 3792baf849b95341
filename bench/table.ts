/**
 * node dist/bench/table.js [RESULTS [README [PAGE]]]: rewrites the README's fidelity section,
 * the lines between `<!-- fidelity:start -->` and `<!-- fidelity:end -->`, and the whole
 * fidelity page (docs/fidelity.md), from the results file `npm run bench` writes
 * (bench/results.json by default), so that the figures a newcomer reads are the last bench's.
 * Exit code 2 and one line on stderr when the file is missing or malformed, or the README has
 * no markers; both files are then left as they were.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTable, fidelityTable, serverTable, timeTable } from './cells.js';
import {
  TableError,
  isError,
  parseResults,
  type BenchResults,
  type Run,
  type TargetResult,
} from './results.js';

export { TableError, parseResults } from './results.js';

export const START = '<!-- fidelity:start -->';
export const END = '<!-- fidelity:end -->';

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

/** Who held, who missed how many figures (the first `most` named, all where `most` is
 *  Infinity; none where it is 0: the table's missed column counts them), who was not measured. */
function verdictLines(results: BenchResults, most: number): string[] {
  const done = results.results.filter((r): r is TargetResult => !isError(r));
  const held = done.filter((r) => r.verdict?.holds).map((r) => r.target);
  const missed = done.filter((r) => r.verdict && !r.verdict.holds);
  const unjudged = done.filter((r) => !r.verdict).map((r) => r.target);
  return [
    held.length ? `Fidelity targets met by ${held.join(', ')}.` : '',
    ...(most > 0 ? missed : []).map(
      (r) =>
        `${r.target} misses ${
          r.verdict!.failing.length
            ? listed(
                r.verdict!.failing.map((f) => `\`${f}\``),
                most,
              )
            : 'a target'
        }.`,
    ),
    unjudged.length
      ? `No verdict recorded for ${unjudged.join(', ')}: read the cells against the targets.`
      : '',
    ...results.results.filter(isError).map((r) => `${r.target} was not measured: ${r.error}`),
  ]
    .filter(Boolean)
    .map((v) => `- ${v}`);
}

/** The line that says which runs measured the results, on what machine. */
function measuredLine(results: BenchResults): string {
  const runs = runsOf(results);
  const when =
    runs.length === 1
      ? ` at commit \`${runs[0].run.commit}\` on ${dayOf(runs[0].run.date)}`
      : ': ' +
        runs.map((r) => `${listed(r.targets, 3)} at \`${r.run.commit}\` on ${dayOf(r.run.date)}`).join('; ');
  return (
    `Measured by \`npm run bench\`${when}, ` +
    `${results.machine.cpus} CPUs (${results.machine.arch}); original and clone in the same run.`
  );
}

const SERVER_LEGEND = [
  "Server cells: the clone's error relative to the original, the largest over the loads; missed: the",
  'figures outside their target of those judged; a call a request: the call whose rate is furthest',
  "off; processes and threads: `= N` where the clone's count equals the original's at every load.",
];

/** The CPU table's legend; `kernel`: the page's, whose table has the kernel's ratios too. */
function cpuLegend(results: BenchResults, kernel = false): string[] {
  const seeds = [...new Set(runsOf(results).map((r) => r.run.randomSeed ?? 'unrecorded'))].join(', ');
  return [
    "CPU cells: the clone's error relative to the original; `original→clone` in misses per 1,000",
    `instructions where the original misses less than once per 1,000. Random geometries (seed ${seeds},`,
    "never tuned on): the mean size of the errors / the worst. CPU ratios: the clone's CPU time a request",
    "over the original's, paired round by round, at each load. Mix gap: the largest gap in a class's share, pp.",
    ...(kernel
      ? [
          "Kernel ratios: the clone's time a request in the kernel (its system ticks' share of its CPU time) over",
          "the original's, the median over the rounds on each side, at each load; – where not yet measured.",
        ]
      : []),
  ];
}

/** The README's fidelity section, markers excluded: the server table and the CPU table on each
 *  target's first platform, who held and who was not measured; every platform, every missed
 *  figure and the stage times are in the page `renderPage` writes. */
export function render(results: BenchResults, page = 'docs/fidelity.md'): string {
  const verdicts = verdictLines(results, 0);
  return [
    measuredLine(results),
    '',
    ...serverTable(results),
    '',
    ...SERVER_LEGEND,
    '',
    ...cpuTable(results),
    '',
    ...cpuLegend(results),
    '',
    ...(verdicts.length ? [...verdicts, ''] : []),
    `Every platform, every missed figure and where the time went: [${page}](${page}).`,
  ].join('\n');
}

/** The whole fidelity page: both tables with the CPU one on every platform, each missed
 *  figure, and the stage times. */
export function renderPage(results: BenchResults): string {
  return [
    '# Fidelity',
    '',
    '<!-- Written by `npm run readme` from bench/results.json: edit those, not this. -->',
    '',
    measuredLine(results),
    '',
    '## Servers',
    '',
    ...serverTable(results),
    '',
    ...SERVER_LEGEND,
    '',
    '## CPU',
    '',
    ...fidelityTable(results),
    '',
    ...cpuLegend(results, true),
    '',
    '## Verdicts',
    '',
    ...verdictLines(results, Infinity),
    '',
    '## Time',
    '',
    ...timeTable(results),
    '',
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

/** Rewrites the README's section and the fidelity page from the results file; returns the
 *  exit code. */
export function main(args: string[]): number {
  const resultsPath = resolve(args[0] ?? join(ROOT, 'bench/results.json'));
  const readmePath = resolve(args[1] ?? join(ROOT, 'README.md'));
  const pagePath = resolve(args[2] ?? join(ROOT, 'docs/fidelity.md'));
  try {
    const results = parseResults(readText(resultsPath, 'run `npm run bench` first'), resultsPath);
    const readme = readText(readmePath, 'give the README to rewrite');
    let next: string;
    try {
      next = rewrite(readme, render(results, relative(dirname(readmePath), pagePath)));
    } catch (e) {
      if (e instanceof TableError) throw new TableError(`${readmePath}: ${e.message}`);
      throw e;
    }
    writeAtomically(pagePath, renderPage(results));
    if (next !== readme) writeAtomically(readmePath, next);
    process.stdout.write(`${readmePath} and ${pagePath}: from ${resultsPath}\n`);
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
