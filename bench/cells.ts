/** The cells and tables of the bench's fidelity section: the clone's error beside the
 *  original's figure, per cache and platform, per load, folded into what a page can hold. */
import { isError, type BenchResults, type Row, type TargetResult } from './results.js';

/** The cache columns, by their metric's name after `sim.<platform>.`. */
const CACHES = ['I1', 'D1', 'L2', 'LLC', 'branch'] as const;

/** Below this many misses per 1,000 instructions an original's figure is too small for a
 *  relative error to mean much (0.02 against 0.01 is +100%): both figures are shown. */
const SMALL_MPKI = 1;

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

/** The clone's CPU time a request in the kernel over the original's (`cpu.sys_us_per_req`),
 *  at each load, lowest first: where a CPU ratio is off, whether the calls made it so. */
export function kernelRatioCell(rows: Row[]): string {
  const loads = rows
    .filter((r) => r.metric === 'cpu.sys_us_per_req' && r.load !== null && r.original && r.clone !== null)
    .sort((a, b) => a.load! - b.load!);
  return loads.length ? loads.map((r) => (r.clone! / r.original!).toFixed(2)).join(' ') : '–';
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

/** A Markdown table with its columns padded, the first `leftColumns` left-aligned, the rest
 *  right. */
export function markdownTable(headers: string[], rows: string[][], leftColumns: number): string[] {
  const widths = headers.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < leftColumns ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)];
}

/** The full CPU table: one row per target and shipped platform, and one for the random
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
        i === 0 ? kernelRatioCell(r.rows) : '',
        i === 0 ? mixGapCell(r.rows) : '',
      ]),
    );
  }
  return markdownTable(
    [
      'target',
      'platform',
      'insns/req',
      'I1',
      'D1',
      'L2',
      'LLC',
      'branch',
      'CPU ratios',
      'kernel ratios',
      'mix gap',
    ],
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

/** The clone's error at the load where it is largest, over the rows `pick` keeps (an original
 *  of 0 or a missing side left out), with the row; null where none is left. */
export function worstRow(rows: Row[], pick: (r: Row) => boolean): { row: Row; error: number } | null {
  let worst: { row: Row; error: number } | null = null;
  for (const row of rows) {
    if (!pick(row) || !row.original || row.clone === null) continue;
    const error = (row.clone - row.original) / row.original;
    if (!worst || Math.abs(error) > Math.abs(worst.error)) worst = { row, error };
  }
  return worst;
}

const worstCell = (rows: Row[], pick: (r: Row) => boolean) => {
  const w = worstRow(rows, pick);
  return w ? relativeCell(1, 1 + w.error) : '–';
};

/** A count (processes, threads) at every load: `= N` (or `= LOW–HIGH` where it grows with
 *  the load) where the clone's equals the original's at each, else the first load's
 *  `original→clone@load` where they differ. */
export function countCell(rows: Row[], metric: string): string {
  const at = rows.filter((r) => r.metric === metric && r.original !== null && r.clone !== null);
  if (!at.length) return '–';
  const off = at.find((r) => r.clone !== r.original);
  if (off) return `${off.original}→${off.clone}@${off.load}`;
  const lo = Math.min(...at.map((r) => r.original!));
  const hi = Math.max(...at.map((r) => r.original!));
  return lo === hi ? `= ${lo}` : `= ${lo}–${hi}`;
}

/** The figures that tell a server: for each target and workload, how many judged figures it
 *  missed, the saturation throughput, and over the loads the largest error of its latency,
 *  of any system call's rate (named), of its disk writes and fsyncs and of its network bytes,
 *  and its processes and threads. */
export function serverTable(results: BenchResults): string[] {
  const rows = results.results
    .filter((r): r is TargetResult => !isError(r))
    .map((r) => {
      const call = worstRow(r.rows, (x) => /^syscalls\.[^.]+\.per_req$/.test(x.metric));
      const name = call ? call.row.metric.split('.')[1] : '';
      const v = r.verdict;
      return [
        r.target,
        v ? `${v.failing.length}${v.judged === undefined ? '' : ` of ${v.judged}`}` : '–',
        worstCell(r.rows, (x) => x.metric === 'saturation_rps'),
        worstCell(r.rows, (x) => x.metric === 'latency.p50_us'),
        worstCell(r.rows, (x) => x.metric === 'latency.p99_us'),
        call ? `${relativeCell(1, 1 + call.error)} ${name}` : '–',
        worstCell(
          r.rows,
          (x) => x.metric === 'disk.write_bytes_per_req' || x.metric === 'disk.fsyncs_per_req',
        ),
        worstCell(r.rows, (x) => x.metric === 'net.bytes_per_req'),
        countCell(r.rows, 'processes.count'),
        countCell(r.rows, 'threads.count'),
      ];
    });
  return markdownTable(
    [
      'target',
      'missed',
      'saturation',
      'p50',
      'p99',
      'a call a request',
      'disk writes',
      'net bytes',
      'processes',
      'threads',
    ],
    rows,
    1,
  );
}

/** The CPU table a page can hold: one row per target and workload, its caches on the first
 *  shipped platform it was measured on, the random geometries' caches folded into one cell
 *  (`randomCell` over all their caches). */
export function cpuTable(results: BenchResults): string[] {
  const rows: string[][] = [];
  for (const r of results.results) {
    if (isError(r)) continue;
    const value = (metric: string) => r.rows.find((x) => x.metric === metric && x.load === null);
    const pair = (p: string, c: string) => {
      const x = value(`sim.${p}.${c}.mpki`);
      return { original: x?.original ?? null, clone: x?.clone ?? null };
    };
    const platforms = platformsOf(r.rows);
    const first = platforms.find((p) => !isRandom(p));
    const random = platforms.filter(isRandom);
    const insns = first ? value(`sim.${first}.insns.per_req`) : undefined;
    rows.push([
      r.target,
      first ?? '–',
      relativeCell(insns?.original ?? null, insns?.clone ?? null),
      ...CACHES.map((c) => (first ? mpkiCell(pair(first, c).original, pair(first, c).clone) : '–')),
      random.length
        ? randomCell(random.flatMap((p) => CACHES.filter((c) => c !== 'branch').map((c) => pair(p, c))))
        : '–',
      pairedRatioCell(r.rows),
      mixGapCell(r.rows),
    ]);
  }
  return markdownTable(
    ['target', 'platform', 'insns/req', 'I1', 'D1', 'L2', 'LLC', 'branch', 'random', 'CPU ratios', 'mix gap'],
    rows,
    2,
  );
}
