import { L1_CURVE_MAX, TwinError, type CurvePoint, type PortableCpu } from '../model/index.js';
import type { CgTotals } from '../collect/cachegrind.js';
import type { Linearity } from '../collect/cpu.js';

/** How far a miss count may rise with cache size before it breaks the law of an LRU cache
 *  (misses never rise with size): both a share of the smaller size's count and an absolute
 *  rise in misses per 1,000 instructions. Each point is another pair of runs, and a server's
 *  timed background work moves a pair's misses: memcached's pairs of 200 requests rose by
 *  0.3 per 1,000 instructions from 64 to 128 KiB. A target still filling its data set rises
 *  by whole misses per 1,000. */
const RISE_SHARE = 0.25;
const RISE_MPKI = 0.5;

const kib = (b: number) => (b >= 1 << 20 ? `${b >> 20} MiB` : `${b >> 10} KiB`);

/** The first place where a curve's misses rise with size by more than the noise allows, or
 *  null. The L1 points are checked for data and code apart; the last-level points as one
 *  unified cache's (code and data summed: apart, code misses rise where data evict it). */
export function curveRise(c: PortableCpu): string | null {
  const abs = (RISE_MPKI * c.insnsPerReq) / 1000;
  const rise = (what: string, pts: CurvePoint[]) => {
    const s = [...pts].sort((a, b) => a.bytes - b.bytes);
    for (let k = 1; k < s.length; k++) {
      const [a, b] = [s[k - 1], s[k]];
      if (b.missesPerReq > a.missesPerReq * (1 + RISE_SHARE) && b.missesPerReq > a.missesPerReq + abs)
        return `its ${what} misses rise from ${a.missesPerReq.toFixed(2)} a request at ${kib(a.bytes)} to ${b.missesPerReq.toFixed(2)} at ${kib(b.bytes)}`;
    }
    return null;
  };
  const l1 = (pts: CurvePoint[]) => pts.filter((p) => p.bytes <= L1_CURVE_MAX);
  const code = new Map(c.codeCurve.map((p) => [p.bytes, p.missesPerReq]));
  const unified = c.dataCurve
    .filter((p) => p.bytes > L1_CURVE_MAX)
    .map((p) => ({ bytes: p.bytes, missesPerReq: p.missesPerReq + (code.get(p.bytes) ?? 0) }));
  return rise('data', l1(c.dataCurve)) ?? rise('code', l1(c.codeCurve)) ?? rise('last-level', unified);
}

/** Refuses a profile whose miss curves break the law: the target did not reach a steady
 *  state over the measured requests (its data set still growing, or a cold start that the
 *  pair of runs did not cancel), and a clone built to such a curve would match nothing. */
export function requireSteadyCurves(c: PortableCpu, requests: number): void {
  const why = curveRise(c);
  if (why)
    throw new TwinError(
      `the target did not settle under Valgrind: ${why} (a miss curve cannot rise with cache size); raise valgrindRequests above ${requests}, preload its data set or warm it (valgrindWarmup)`,
    );
}

/** How far the instructions a request of the two halves may differ: a serving thread's work
 *  is the same request after request (memcached's halves: 3,126 and 3,098). */
const HALVES_INSNS = 0.1;
/** How many of the runs' own standard deviations the halves must differ by besides. The
 *  halves' difference is the runs of n and 3n less twice the run of 2n, each a mean of P
 *  repeats, so its deviation is sqrt(6 / P) runs'; the runs' is read off three repeats (n, 2n,
 *  3n), a t statistic of three degrees of freedom, which passes 4 one time in 36 by chance
 *  alone. A single-threaded server's timed work (redis's cron, on its serving thread) moves a
 *  run's instructions by about half a million, and a half's by 5%: with one run of each, its
 *  halves differed by 10.4% in a steady run. */
const HALVES_SIGMAS = 4;

/** A figure of a run's totals. */
type Figure = (t: CgTotals) => number;

/** The runs' own standard deviation of a figure, from the differences between repeats of the
 *  same run (each the difference of two runs: twice a run's variance); 0 without repeats. */
function runNoise(repeats: CgTotals[], f: Figure): number {
  if (!repeats.length) return 0;
  return Math.sqrt(repeats.reduce((s, r) => s + f(r) ** 2, 0) / (2 * repeats.length));
}

/** The pair method assumes every measured request costs alike: the first sweep point's
 *  requests n to 2n against 2n to 3n (a run of 2n between the pair's). A target whose work
 *  or misses per request still move (a data set filling, caches warming) breaks it: the
 *  difference of the pair would describe a moment, not the server. Returns why, or null.
 *  A figure moves only past the runs' own noise (`repeats`, HALVES_SIGMAS); instructions
 *  besides by a share, the last level's misses as the curve law judges a rise: past both a
 *  share and an absolute change in misses per 1,000 instructions. */
export function halvesDiffer(
  h: CgTotals[],
  requests: number,
  repeats: CgTotals[] = [],
  runs = 1,
): string | null {
  const [a, b] = h;
  if (!a || !b || a.Ir <= 0) return null;
  const per = (x: number, digits = 1) => (x / (requests / 2)).toFixed(digits);
  const noisy = (f: Figure) =>
    Math.abs(f(b) - f(a)) <= HALVES_SIGMAS * Math.sqrt(6 / runs) * runNoise(repeats, f);
  const ir: Figure = (t) => t.Ir;
  if (Math.abs(b.Ir - a.Ir) > HALVES_INSNS * Math.min(a.Ir, b.Ir) && !noisy(ir))
    return `its instructions a request moved from ${per(a.Ir, 0)} to ${per(b.Ir, 0)} between the first and second half of the measured requests`;
  const abs = (RISE_MPKI * a.Ir) / 1000;
  // The last level's misses (code and data): a data set still filling misses there cold. An
  // L1's are not judged: each half is the difference of two separate runs, and they move
  // from run to run (memcached's 8 KiB data misses: 189 and 150 a request).
  const ll: Figure = (t) => t.DLmr + t.DLmw + t.ILmr;
  const [x, y] = [ll(a), ll(b)];
  if (Math.abs(y - x) > abs && Math.abs(y - x) > RISE_SHARE * Math.min(x, y) && !noisy(ll))
    return `its last-level misses a request moved from ${per(x)} to ${per(y)} between the first and second half of the measured requests`;
  return null;
}

/** Refuses a target whose measured requests do not cost alike (`halvesDiffer`). */
export function requireLinear(l: Linearity, requests: number): void {
  const why = halvesDiffer(l.halves, requests, l.repeats, l.runs);
  if (why)
    throw new TwinError(
      `the target did not settle under Valgrind: ${why}; raise valgrindRequests above ${requests / 2}, preload its data set or warm it (valgrindWarmup)`,
    );
}
