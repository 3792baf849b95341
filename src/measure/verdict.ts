import { TARGETS, type Comparison, type ComparisonRow, type Verdict } from '../model/index.js';

const rel = (r: ComparisonRow) => (r.clone! - r.original!) / r.original!;
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;
const known = (r: ComparisonRow) => r.original !== null && r.clone !== null;
const at = (r: ComparisonRow) => (r.load === null ? r.metric : `${r.metric}@${r.load}`);

/** Whether a comparison meets the fidelity targets, and the figures that miss, each with
 *  its error and its bound. Latency is judged only where a comparison has the original's
 *  saturation throughput, at loads up to 80% of it. */
export function verdictOf(c: Comparison): Verdict {
  const failing: string[] = [];
  let judged = 0;
  const check = (ok: boolean, what: string) => {
    judged++;
    if (!ok) failing.push(what);
  };
  const rows = c.rows.filter(known);
  // Latency is judged up to a share of the original's saturation throughput, where known.
  const sat = rows.find((r) => r.metric === 'saturation_rps')?.original ?? null;
  for (const r of rows) {
    const m = r.metric;
    if (sat !== null && r.load !== null && r.load <= TARGETS.latencyUpTo * sat && r.original! > 0) {
      const bound = m === 'latency.p50_us' ? TARGETS.p50 : m === 'latency.p99_us' ? TARGETS.p99 : null;
      if (bound !== null) check(Math.abs(rel(r)) <= bound, `${at(r)} ${pct(rel(r))} (±${100 * bound}%)`);
    }
    if (m === 'saturation_rps' && r.original! > 0)
      check(Math.abs(rel(r)) <= TARGETS.saturation, `${m} ${pct(rel(r))} (±${100 * TARGETS.saturation}%)`);
    if (m === 'cpu.paired_ratio') {
      const [lo, hi] = TARGETS.pairedRatio;
      check(r.clone! >= lo && r.clone! <= hi, `${at(r)} ${r.clone!.toFixed(2)} (${lo}-${hi})`);
    } else if (/^syscalls\.(.+\.)?per_req$/.test(m) && r.original! > 0)
      check(Math.abs(rel(r)) <= TARGETS.syscalls, `${at(r)} ${pct(rel(r))} (±${100 * TARGETS.syscalls}%)`);
    else if ((m === 'disk.write_bytes_per_req' || m === 'disk.fsyncs_per_req') && r.original! > 0)
      check(Math.abs(rel(r)) <= TARGETS.disk, `${at(r)} ${pct(rel(r))} (±${100 * TARGETS.disk}%)`);
    else if (m.startsWith('driver.') && r.original! > 0)
      check(Math.abs(rel(r)) <= TARGETS.driver, `${at(r)} ${pct(rel(r))} (±${100 * TARGETS.driver}%)`);
    else if (m === 'net.bytes_per_req' && r.original! > 0)
      check(Math.abs(rel(r)) <= TARGETS.bytes, `${at(r)} ${pct(rel(r))} (±${100 * TARGETS.bytes}%)`);
    else if (m === 'threads.count' || m === 'processes.count')
      check(r.clone === r.original, `${at(r)} ${r.clone} vs ${r.original}`);
    else if (m === 'errors.count') check(r.clone! <= r.original!, `${at(r)} ${r.clone} vs ${r.original}`);
    else if (m === 'insns.per_req' && r.original! > 0)
      check(Math.abs(rel(r)) <= TARGETS.insns, `${m} ${pct(rel(r))} (±${100 * TARGETS.insns}%)`);
    else if (/^mix\..*\.share$/.test(m)) {
      const pp = 100 * (r.clone! - r.original!);
      check(Math.abs(pp) <= TARGETS.mixPp, `${m} ${pp.toFixed(1)} pp (±${TARGETS.mixPp} pp)`);
    }
  }
  // The branch predictor is one model on every platform: one figure.
  const branch = rows.find((r) => /^sim\.[^.]+\.branch\.mpki$/.test(r.metric));
  if (branch) cacheCheck('branch.mpki', [branch], TARGETS.branch, TARGETS.branch, check);
  for (const level of ['I1', 'D1', 'L2', 'LLC']) {
    const each = rows.filter((r) => new RegExp(`^sim\\.[^.]+\\.${level}\\.mpki$`).test(r.metric));
    if (each.length) cacheCheck(`${level}.mpki`, each, TARGETS.cacheMean, TARGETS.cacheWorst, check);
  }
  return { holds: failing.length === 0, judged, failing };
}

/** One figure over the platforms: the mean and worst relative error of those whose original
 *  is at least TARGETS.small, and each smaller one within TARGETS.smallAbs absolute. */
function cacheCheck(
  name: string,
  rows: ComparisonRow[],
  mean: number,
  worst: number,
  check: (ok: boolean, what: string) => void,
): void {
  const large = rows.filter((r) => r.original! >= TARGETS.small);
  if (large.length) {
    const errs = large.map((r) => Math.abs(rel(r)));
    const m = errs.reduce((a, b) => a + b, 0) / errs.length;
    const w = Math.max(...errs);
    check(m <= mean, `${name} mean ${pct(m)} (±${100 * mean}%)`);
    if (large.length > 1 || worst !== mean) check(w <= worst, `${name} worst ${pct(w)} (±${100 * worst}%)`);
  }
  for (const r of rows.filter((x) => x.original! < TARGETS.small)) {
    const d = r.clone! - r.original!;
    check(
      Math.abs(d) <= TARGETS.smallAbs,
      `${r.metric} ${r.original!.toFixed(3)}->${r.clone!.toFixed(3)} (±${TARGETS.smallAbs})`,
    );
  }
}
