import { chainSteps, reuseCurves, type Comparison, type Profile, type Verdict } from '../model/index.js';

function fmt(x: number | null): string {
  if (x === null || Number.isNaN(x)) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a < 0.01) return x.toExponential(2);
  if (a < 10) return x.toFixed(3);
  if (a < 1000) return x.toFixed(1);
  return Math.round(x).toString();
}

/** Relative error of the clone against the original, or null where it means nothing. */
export function relError(original: number | null, clone: number | null): number | null {
  if (original === null || clone === null) return null;
  if (original === 0) return clone === 0 ? 0 : null;
  return (clone - original) / original;
}

export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The side-by-side table of a comparison. */
export function comparisonTable(c: Comparison): string {
  const rows = c.rows.map((r) => {
    // Instruction-mix shares differ in percentage points; the rest relatively.
    const pp =
      r.metric.startsWith('mix.') && r.original !== null && r.clone !== null
        ? `${((r.clone - r.original) * 100).toFixed(1)} pp`
        : null;
    const e = relError(r.original, r.clone);
    return [
      r.metric,
      r.load === null ? '-' : String(r.load),
      fmt(r.original),
      fmt(r.clone),
      pp ?? (e === null ? '-' : `${(e * 100).toFixed(1)}%`),
      r.originalRange ? r.originalRange.map(fmt).join('-') : '',
    ];
  });
  // The original's lowest and highest over its pairs, each its stack at another placement.
  const ranged = c.rows.some((r) => r.originalRange);
  return (
    `${c.target} on ${c.platform}: original vs clone, same run\n` +
    renderTable(
      [
        'metric',
        'load rps',
        'original',
        'clone',
        'error',
        ...(ranged ? ['original by stack placement'] : []),
      ],
      ranged ? rows : rows.map((r) => r.slice(0, -1)),
    )
  );
}

/** The tuning history: per iteration, instructions and the figures furthest off, clone vs
 *  original per request. */
export function tuningTable(p: Profile): string {
  if (!p.tuning.length) return 'no tuning history';
  // (A trim of the budget has instructions only: the columns are every step's.)
  const keys = [...new Set(p.tuning.flatMap((t) => Object.keys(t.points)))].filter((k) => k !== 'insns');
  const pair = (t: Profile['tuning'][number], k: string) =>
    t.points[k] ? `${fmt(t.points[k].clone)}/${fmt(t.points[k].original)}` : '-';
  return (
    'per request, clone/original; D@ and I@: data and instruction misses of an LRU cache of that size; L@: both, of a unified last level\n' +
    renderTable(
      ['iteration', 'body insns/req', 'clone insns/req', 'target insns/req', 'error', ...keys],
      p.tuning.map((t) => [
        String(t.iteration),
        fmt(t.bodyInsnsPerReq),
        fmt(t.cloneInsnsPerReq),
        fmt(t.targetInsnsPerReq),
        `${(t.error * 100).toFixed(1)}%`,
        ...keys.map((k) => pair(t, k)),
      ]),
    )
  );
}

/** The tuning history in a few columns (at most 100): per step, its instructions against the
 *  target, its largest error in tolerances (at most 1 is on target), the figure that sets it
 *  and the errors' root mean square (the kept iteration's is the least). `twin inspect
 *  --tuning` prints every figure. */
export function tuningSummary(p: Profile): string {
  if (!p.tuning.length) return 'no tuning history';
  const trims = p.tuning.filter((t) => t.trim);
  const head = `tuning: ${p.tuning.length - trims.length} iterations, ${trims.length} trims (${trims.filter((t) => t.kept).length} kept); x: largest error, rms: root mean square (in tolerances)`;
  const rows = p.tuning.map((t) => {
    const w = t.worst ? t.points[t.worst] : undefined;
    return [
      String(t.iteration),
      t.trim ? (t.kept ? 'trim, kept' : 'trim') : 'iteration',
      fmt(t.cloneInsnsPerReq),
      `${(t.error * 100).toFixed(1)}%`,
      t.score === undefined ? '-' : `x${t.score.toFixed(2)}`,
      t.worst ?? '-',
      w ? `${fmt(w.clone)}/${fmt(w.original)}` : '-',
      t.rms === undefined ? '-' : t.rms.toFixed(2),
    ];
  });
  return `${head}\n${renderTable(['step', 'kind', 'insns/req', 'error', 'x', 'worst', 'clone/original', 'rms'], rows)}`;
}

/** The portable CPU profile in a few lines: misses per request at some cache sizes, and the
 *  largest instruction classes. */
function cpuLines(p: Profile): string[] {
  const o = p.body.original;
  const at = (c: { bytes: number; missesPerReq: number }[]) =>
    c
      .filter((x) => [32 << 10, 256 << 10, 1 << 20, 32 << 20].includes(x.bytes))
      .map((x) => `${x.bytes >= 1 << 20 ? `${x.bytes >> 20}M` : `${x.bytes >> 10}K`} ${fmt(x.missesPerReq)}`)
      .join(', ');
  const mix = o.mix
    ? Object.entries(o.mix.shares)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`)
        .join(', ')
    : 'not measured';
  // The reuse curve (12 to 16 ways) between and past the L1 sizes above.
  const fine = o.reuse ? reuseCurves(o.reuse) : null;
  const reuseAt = (c: { bytes: number; missesPerReq: number }[]) =>
    c
      .filter((x) => [16, 24, 32, 48, 64, 128, 512].includes(x.bytes >> 10))
      .map((x) => `${x.bytes >> 10}K ${fmt(x.missesPerReq)}`)
      .join(', ');
  return [
    `data misses a request: ${at(o.dataCurve)}`,
    `code misses a request: ${at(o.codeCurve)}; branch mispredictions ${fmt(o.branchMissesPerReq)}`,
    ...(fine ? [`reuse curve, data: ${reuseAt(fine.data)}`, `reuse curve, code: ${reuseAt(fine.code)}`] : []),
    `instruction mix: ${mix}`,
    ...(o.chasePerReq
      ? [
          `loads waiting on a load: ${fmt(o.chasePerReq.reduce((a, b) => a + b, 0))} a request, ${fmt(chainSteps(o.chasePerReq)!)} serial steps (of ${fmt(o.dataRefsPerReq)} data accesses)`,
        ]
      : []),
    ...(p.body.skeleton
      ? [
          `the clone's skeleton alone: ${fmt(p.body.skeleton.insnsPerReq)} instructions a request, ${((100 * p.body.skeleton.insnsPerReq) / o.insnsPerReq).toFixed(0)}% of the original's`,
        ]
      : []),
  ];
}

/** `items` joined by commas after `head`, wrapped at `width` columns with an indent. */
export function wrapList(head: string, items: string[], width = 100): string[] {
  const lines = [head];
  for (const [k, item] of items.entries()) {
    const piece = `${item}${k + 1 < items.length ? ',' : ''}`;
    const last = lines.length - 1;
    if (lines[last].length + 1 + piece.length > width && lines[last].trim().length) lines.push(`  ${piece}`);
    else lines[last] += `${lines[last].endsWith(' ') ? '' : ' '}${piece}`;
  }
  return lines;
}

/** A few lines on what a profile says, none wider than 100 columns. */
export function profileSummary(p: Profile): string {
  const sk = p.skeleton;
  const bg = sk.background.filter((b) => b.sleep !== 'idle').length;
  const until = sk.recvUntilEagain ? ' until EAGAIN' : '';
  return [
    `${p.service.name} (${p.service.protocol}), profiled at ${p.source.loadRps} requests/s${p.source.settledS === undefined ? '' : `, steady after ${fmt(p.source.settledS)} s`}`,
    `skeleton: ${sk.networkModel}, ${sk.io}, ${sk.workers} worker(s), ${sk.processes} process(es); ${sk.recvCall}${until} / ${sk.sendCall}`,
    `threads: ${sk.threads.length} (${sk.background.length} background, ${bg} periodic)`,
    `per request: ${fmt(p.kernel.syscallsPerReq)} system calls, ${fmt(p.perRequest.netBytesPerReq)} network bytes, ${fmt(p.perRequest.cpuUsPerReq)} CPU us, ${fmt(p.body.original.insnsPerReq)} instructions`,
    ...(p.requests.some((r) => r.alone)
      ? wrapList(
          'request types, instructions a request alone:',
          p.requests.map((r) => `${r.op} ${fmt(r.alone?.insnsPerReq ?? 0)} (${(100 * r.share).toFixed(0)}%)`),
        )
      : []),
    ...(sk.locks.length
      ? wrapList(
          'serialized sections, to the release:',
          sk.locks.map((l) => `${l.op} #${l.nth} to ${l.release} on ${l.ways} lock(s)`),
        )
      : []),
    ...wrapList(
      'replayed calls:',
      p.kernel.replay.length ? p.kernel.replay.map((r) => `${r.name} ${fmt(r.perReq)}`) : ['none'],
    ),
    ...cpuLines(p),
  ].join('\n');
}

/** The verdict as one terminal line of at most `width` columns: each failing figure with its
 *  error (the comparison's verdict has the bounds too), as many as fit. */
export function verdictLine(v: Verdict, width = 120): string {
  if (v.holds) return `verdict: holds (${v.judged} figures within their targets)`;
  const shown = v.failing.map((f) => f.replace(/ \([^)]*\)$/, ''));
  let line = `verdict: misses ${v.failing.length} of ${v.judged} targets: `;
  for (const [k, f] of shown.entries()) {
    const more = `, and ${shown.length - k} more in the comparison`;
    const piece = `${k ? ', ' : ''}${f}`;
    const last = k + 1 === shown.length;
    if (k > 0 && line.length + piece.length + (last ? 0 : more.length) > width) return line + more;
    line += piece;
  }
  return line;
}
