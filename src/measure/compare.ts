import {
  INSN_CLASSES,
  COMPARISON_SCHEMA_VERSION,
  TARGETS,
  TwinError,
  type Comparison,
  type ComparisonRow,
  type LoadPoint,
  type Measurement,
} from '../model/index.js';
import { median } from '../util/stats.js';

/** Whether a round ran without the tracer (it has no system call counts). */
const untraced = (p: LoadPoint) => p.syscallsPerReq === null;

/** One load point from several rounds: the timed figures are medians over the untraced
 *  rounds (over all, if every round was traced), the system calls come from the traced
 *  rounds, and counts are summed. */
export function mergeRounds(ps: LoadPoint[]): LoadPoint {
  if (ps.length === 1) return ps[0];
  const timed = ps.some(untraced) ? ps.filter(untraced) : ps;
  const traced = ps.filter((p) => !untraced(p));
  const med = (f: (p: LoadPoint) => number) => median(timed.map(f));
  const sum = (xs: LoadPoint[], f: (p: LoadPoint) => number) => xs.reduce((a, p) => a + f(p), 0);
  const errors: Record<string, number> = {};
  for (const p of ps) for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
  // Per request over the traced rounds, each weighted by the requests it sent.
  const tracedSent = sum(traced, (p) => p.sent);
  const perReq = (f: (p: LoadPoint) => number) =>
    tracedSent > 0 ? sum(traced, (p) => f(p) * p.sent) / tracedSent : 0;
  const names = new Set(traced.flatMap((p) => Object.keys(p.syscallsByName)));
  const requests = sum(ps, (p) => p.requests);
  const counted = ps.some((p) => p.netBytesPerReq > 0) ? ps.filter((p) => p.netBytesPerReq > 0) : ps;
  const driven = timed.filter((p) => p.driver);
  return {
    targetRps: ps[0].targetRps,
    throughputRps: med((p) => p.throughputRps),
    requests,
    sent: sum(ps, (p) => p.sent),
    errors,
    latency: {
      mean: med((p) => p.latency.mean),
      p50: med((p) => p.latency.p50),
      p90: med((p) => p.latency.p90),
      p99: med((p) => p.latency.p99),
      p999: med((p) => p.latency.p999),
      max: Math.max(...timed.map((p) => p.latency.max)),
    },
    cpuUsPerReq: med((p) => p.cpuUsPerReq),
    ...(timed.every((p) => p.cpuSysUsPerReq !== undefined)
      ? { cpuSysUsPerReq: med((p) => p.cpuSysUsPerReq!) }
      : {}),
    // Over the rounds that counted bytes (a driver of the target's own counts none untraced).
    netBytesPerReq:
      sum(counted, (p) => p.netBytesPerReq * p.requests) /
      Math.max(
        1,
        sum(counted, (p) => p.requests),
      ),
    syscallsPerReq: traced.length ? perReq((p) => p.syscallsPerReq!) : null,
    syscallsByName: Object.fromEntries(
      [...names].map((n) => [n, Math.round(perReq((p) => p.syscallsByName[n] ?? 0) * 1e4) / 1e4]),
    ),
    threads: Math.round(med((p) => p.threads)),
    ...(driven.length
      ? {
          driver: {
            tps: median(driven.map((p) => p.driver!.tps)),
            latencyMeanUs: median(driven.map((p) => p.driver!.latencyMeanUs)),
          },
        }
      : {}),
    ...(ps.every((p) => p.processes !== undefined)
      ? { processes: Math.round(med((p) => p.processes!)) }
      : {}),
    disk:
      traced.length && traced.every((p) => p.disk)
        ? {
            readBytesPerReq: perReq((p) => p.disk!.readBytesPerReq),
            writeBytesPerReq: perReq((p) => p.disk!.writeBytesPerReq),
            syncsPerReq: perReq((p) => p.disk!.syncsPerReq),
          }
        : null,
  };
}

/** The median of the clone's CPU time per request over the original's, round by round,
 *  over the rounds whose timed figures count (the untraced ones, or all if every round was
 *  traced); null without such a pair. */
export function pairedRatio(original: LoadPoint[], clone: LoadPoint[]): number | null {
  const ratios = pairedRatios(original, clone);
  return ratios.length ? median(ratios) : null;
}

/** The clone's CPU time per request over the original's, round by round, over the rounds
 *  whose timed figures count. */
export function pairedRatios(original: LoadPoint[], clone: LoadPoint[]): number[] {
  const all = !original.some(untraced);
  return original.flatMap((o, i) => {
    const c = clone[i];
    return c && (all || (untraced(o) && untraced(c))) && o.cpuUsPerReq > 0 && c.cpuUsPerReq > 0
      ? [c.cpuUsPerReq / o.cpuUsPerReq]
      : [];
  });
}

/** The lowest and the highest the median of `total` values can still come out at, given
 *  `known` of them, whatever the others: the others all below the known ones, or all above. */
export function medianBounds(known: number[], total: number): [number, number] {
  const a = [...known].sort((x, y) => x - y);
  const rest = total - a.length;
  const ranks = total % 2 ? [(total + 1) / 2] : [total / 2, total / 2 + 1];
  const nth = (i: number) => (i < 1 ? -Infinity : i > a.length ? Infinity : a[i - 1]);
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  return [mean(ranks.map((j) => nth(j - rest))), mean(ranks.map(nth))];
}

/** Whether the median of `total` values, `known` of them measured, is already on one side of
 *  a band's verdict (inside it, or wholly above or below) whatever the others come out at. */
export function medianDecided(known: number[], total: number, [lo, hi]: readonly [number, number]): boolean {
  const [low, high] = medianBounds(known, total);
  return (low >= lo && high <= hi) || low > hi || high < lo;
}

/** The side-by-side rows of two measurements. */
export function compare(target: string, platform: string, o: Measurement, c: Measurement): Comparison {
  const rows: ComparisonRow[] = [];
  o.points.forEach((po, i) => {
    const pc = c.points[i];
    if (!pc) throw new TwinError('original and clone were measured at different load points');
    const load = po.targetRps;
    const add = (metric: string, f: (p: LoadPoint) => number | null) =>
      rows.push({ metric, load, original: f(po), clone: f(pc) });
    add('throughput_rps', (p) => p.throughputRps);
    add('latency.p50_us', (p) => p.latency.p50);
    add('latency.p99_us', (p) => p.latency.p99);
    add('cpu.us_per_req', (p) => p.cpuUsPerReq);
    // The kernel's part of it: where a clone's CPU time differs, whether in its own code or
    // in the calls it makes.
    if (po.cpuSysUsPerReq !== undefined) add('cpu.sys_us_per_req', (p) => p.cpuSysUsPerReq ?? null);
    // The clone's CPU time against the original's in the same rounds: the original as 1.
    if (pc.cpuRatio !== undefined)
      rows.push({ metric: 'cpu.paired_ratio', load, original: 1, clone: pc.cpuRatio });
    add('net.bytes_per_req', (p) => p.netBytesPerReq);
    add('syscalls.per_req', (p) => p.syscallsPerReq);
    add('threads.count', (p) => p.threads);
    if (po.processes !== undefined) add('processes.count', (p) => p.processes ?? null);
    if (po.disk) {
      add('disk.read_bytes_per_req', (p) => p.disk?.readBytesPerReq ?? null);
      add('disk.write_bytes_per_req', (p) => p.disk?.writeBytesPerReq ?? null);
      add('disk.fsyncs_per_req', (p) => p.disk?.syncsPerReq ?? null);
    }
    // Each call the original makes at least TARGETS.syscallRowMin times a request.
    for (const [name, n] of Object.entries(po.syscallsByName).sort())
      if (n >= TARGETS.syscallRowMin) add(`syscalls.${name}.per_req`, (p) => p.syscallsByName[name] ?? 0);
    // The driver's own figures (pgbench's transactions a second and mean latency).
    if (po.driver) {
      add('driver.tps', (p) => p.driver?.tps ?? null);
      add('driver.latency_mean_us', (p) => p.driver?.latencyMeanUs ?? null);
    }
    add('errors.count', (p) => Object.values(p.errors).reduce((a, b) => a + b, 0));
  });
  if (o.saturationRps !== undefined && c.saturationRps !== undefined)
    rows.push({ metric: 'saturation_rps', load: null, original: o.saturationRps, clone: c.saturationRps });
  // Instructions per request and branch mispredictions per 1,000: the medians of all of a
  // side's Valgrind pairs. The simulated caches change neither what runs nor the simulated
  // branch predictor, while a server's timed background work (a maintenance thread woken on
  // a timer, much of its instructions at Valgrind's pace) moves each pair's figures by a few
  // percent. Every platform's row shows the pooled figures.
  const pairs = (m: Measurement): Measurement['cpu'][number]['pairs'] =>
    m.cpu.flatMap((x) =>
      x.pairs.length ? x.pairs : [{ insnsPerReq: x.insnsPerReq, branchMpki: x.branchMpki }],
    );
  const pooled = (m: Measurement) => ({
    insns: pairs(m).length ? median(pairs(m).map((x) => x.insnsPerReq)) : (m.mix?.insnsPerReq ?? 0),
    branch: median(pairs(m).map((x) => x.branchMpki)),
  });
  const pool = { o: pooled(o), c: pooled(c) };
  // A cache's misses per 1,000 instructions: the median of all of a side's pairs that simulated
  // that cache, whichever platform they were run for (skylake-sp and haswell-ep have the same
  // L1s; an L1 is simulated in both of a platform's pairs; graviton2's LLC is skylake-sp's),
  // else the platform's own figure.
  type Cache = 'I1' | 'D1' | 'LL';
  const cacheMpki = (
    m: Measurement,
    level: Cache,
    geometry: string | undefined,
    own: number | null,
  ): number | null => {
    const xs = pairs(m).flatMap((x) =>
      geometry && x.caches?.[level] === geometry && x[`${level}Mpki`] !== undefined
        ? [x[`${level}Mpki`]!]
        : [],
    );
    return xs.length ? median(xs) : own;
  };
  o.cpu.forEach((oc, i) => {
    const cc = c.cpu[i];
    if (!cc) return;
    type Cpu = Measurement['cpu'][number];
    const add = (metric: string, f: (m: Cpu) => number | null) =>
      rows.push({ metric, load: null, original: f(oc), clone: f(cc) });
    if (i === 0) {
      // The first platform's rates, beside the foundation's rows.
      rows.push({ metric: 'insns.per_req', load: null, original: pool.o.insns, clone: pool.c.insns });
      add('I1.miss_rate', (m) => m.I1MissRate);
      add('D1.miss_rate', (m) => m.D1MissRate);
      add('LL.miss_rate', (m) => m.LLMissRate);
      add('branch.mispredict_rate', (m) => m.branchMispredictRate);
      // The serial steps of the loads (shown, not judged: a portable count of what a core's
      // window cannot overlap, which the clone's rings are walked to).
      if (o.loadStepsPerReq !== undefined && c.loadStepsPerReq !== undefined)
        rows.push({
          metric: 'loads.serial_steps_per_req',
          load: null,
          original: o.loadStepsPerReq,
          clone: c.loadStepsPerReq,
        });
    }
    const p = `sim.${oc.platform}`;
    // This platform's caches, as its own pairs simulated them (the LLC pair, then the L2 pair).
    const [llc, l2] = oc.pairs;
    type Placed = NonNullable<Cpu['placements']>[number];
    const pooledRow = (
      metric: string,
      level: Cache,
      geometry: string | undefined,
      f: (m: Cpu | Placed) => number | null,
    ) => {
      // The original's pairs, each its stack at another placement: their lowest and highest.
      const each = (oc.placements ?? []).flatMap((x) => (f(x) === null ? [] : [f(x)!]));
      rows.push({
        metric,
        load: null,
        original: cacheMpki(o, level, geometry, f(oc)),
        clone: cacheMpki(c, level, geometry, f(cc)),
        ...(each.length > 1 ? { originalRange: [Math.min(...each), Math.max(...each)] } : {}),
      });
    };
    pooledRow(`${p}.I1.mpki`, 'I1', llc?.caches?.I1, (m) => m.I1Mpki);
    pooledRow(`${p}.D1.mpki`, 'D1', llc?.caches?.D1, (m) => m.D1Mpki);
    pooledRow(`${p}.L2.mpki`, 'LL', l2?.caches?.LL, (m) => m.L2Mpki);
    pooledRow(`${p}.LLC.mpki`, 'LL', llc?.caches?.LL, (m) => m.LLCMpki);
    rows.push({ metric: `${p}.branch.mpki`, load: null, original: pool.o.branch, clone: pool.c.branch });
    rows.push({ metric: `${p}.insns.per_req`, load: null, original: pool.o.insns, clone: pool.c.insns });
  });
  if (o.mix && c.mix) {
    // Shares of the dynamic instructions, class by class (the error column is relative; the
    // fidelity bar for these is in percentage points).
    for (const k of INSN_CLASSES)
      rows.push({ metric: `mix.${k}.share`, load: null, original: o.mix.shares[k], clone: c.mix.shares[k] });
  }
  return { schemaVersion: COMPARISON_SCHEMA_VERSION, kind: 'twin-comparison', target, platform, rows };
}
