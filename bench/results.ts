/** The bench's results file (bench/results.json) as `npm run readme` reads it: its types, and
 *  a parser that names the first field that is wrong. */

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
  verdict: { holds: boolean; failing: string[]; judged?: number } | null;
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
      ...(verdict.judged === undefined ? {} : { judged: number(verdict.judged, `${path}.verdict.judged`) }),
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

export function isError(r: TargetResult | TargetError): r is TargetError {
  return 'error' in r;
}
