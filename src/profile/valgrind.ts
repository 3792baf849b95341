import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TwinError, type CpuCounters, type Platform, type Workload } from '../model/index.js';
import { runLoad, totalErrors } from '../measure/loadgen.js';
import { launchTarget, type LaunchSpec } from './target.js';
import { requireTool } from './bpftrace.js';
import { DEFAULT_PLATFORM, loadPlatform } from './platforms.js';

export function defaultPlatform(): Platform {
  return loadPlatform(DEFAULT_PLATFORM);
}

/** What one Valgrind run simulates: the L1s and one last level. */
interface Geometry {
  I1: Platform['I1'];
  D1: Platform['D1'];
  LL: Platform['LLC'];
}

export const CG_EVENTS = ['Ir', 'I1mr', 'ILmr', 'Dr', 'D1mr', 'DLmr', 'Dw', 'D1mw', 'DLmw', 'Bc', 'Bcm', 'Bi', 'Bim'] as const;
export type CgTotals = Record<(typeof CG_EVENTS)[number], number>;

/** The `events:` and `summary:` lines of a cachegrind.out file: event totals only (the rest
 *  of the file names the original's functions and is never read). */
export function parseCachegrind(text: string): CgTotals {
  const events = /^events:\s*(.+)$/m.exec(text)?.[1].trim().split(/\s+/);
  const summary = /^summary:\s*(.+)$/m.exec(text)?.[1].trim().split(/\s+/).map(Number);
  if (!events || !summary) throw new TwinError('cachegrind output has no events or summary line: was the target killed before it could write it?');
  const totals = Object.fromEntries(CG_EVENTS.map((e) => [e, 0])) as CgTotals;
  events.forEach((e, i) => {
    if (e in totals) totals[e as keyof CgTotals] = summary[i] ?? 0;
  });
  return totals;
}

export function addTotals(a: CgTotals, b: CgTotals): CgTotals {
  return Object.fromEntries(CG_EVENTS.map((e) => [e, a[e] + b[e]])) as CgTotals;
}

export function subTotals(a: CgTotals, b: CgTotals): CgTotals {
  return Object.fromEntries(CG_EVENTS.map((e) => [e, Math.max(0, a[e] - b[e])])) as CgTotals;
}

const ratio = (a: number, b: number) => (b > 0 ? Math.min(1, a / b) : 0);

const mpki = (misses: number, insns: number) => (insns > 0 ? (1000 * misses) / insns : 0);

/** Counters per request from the totals of the LLC run, and, when given, of the L2 run. */
export function countersFrom(t: CgTotals, requests: number, platform: string, l2?: CgTotals): CpuCounters {
  const data = t.Dr + t.Dw;
  return {
    platform,
    requests,
    insnsPerReq: requests > 0 ? t.Ir / requests : 0,
    I1MissRate: ratio(t.I1mr, t.Ir),
    D1MissRate: ratio(t.D1mr + t.D1mw, data),
    LLMissRate: ratio(t.ILmr + t.DLmr + t.DLmw, t.Ir + data),
    branchMispredictRate: ratio(t.Bcm + t.Bim, t.Bc + t.Bi),
    memRefsPerInsn: ratio(data, t.Ir),
    branchesPerInsn: ratio(t.Bc + t.Bi, t.Ir),
    I1Mpki: mpki(t.I1mr, t.Ir),
    D1Mpki: mpki(t.D1mr + t.D1mw, t.Ir),
    L2Mpki: l2 ? mpki(l2.ILmr + l2.DLmr + l2.DLmw, l2.Ir) : null,
    LLCMpki: mpki(t.ILmr + t.DLmr + t.DLmw, t.Ir),
    branchMpki: mpki(t.Bcm + t.Bim, t.Ir),
  };
}

const geom = (g: Platform['I1']) => `${g.size},${g.assoc},${g.line}`;

/** One cachegrind run: start the target under Valgrind, preload, send `requests` requests,
 *  stop it; returns the event totals summed over its processes. */
async function cachegrindRun(spec: LaunchSpec, w: Workload, platform: Geometry, requests: number, rate: number): Promise<CgTotals> {
  const outDir = mkdtempSync(join(tmpdir(), 'twin-cg-'));
  const wrapper = [
    'valgrind', '--tool=cachegrind', '--cache-sim=yes', '--branch-sim=yes',
    `--I1=${geom(platform.I1)}`, `--D1=${geom(platform.D1)}`, `--LL=${geom(platform.LL)}`,
    '--trace-children=yes', `--cachegrind-out-file=${outDir}/cg.%p`, '--log-file=/dev/null',
  ];
  try {
    // Valgrind keeps file descriptors of its own above the hard limit; servers that raise
    // their soft limit to the hard one fail unless both are set equal (memcached does).
    const target = await launchTarget({ ...spec, wrapper, preamble: 'ulimit -Sn 1036 -Hn 1036 2>/dev/null', startSlowdown: 6 });
    try {
      if (w.preload) await runLoad(w, target.port, { rate: 1, duration: 0.001, warmup: 0, preload: true, maxRequests: 1, timeoutMs: 30000 });
      const r = await runLoad(w, target.port, { rate, duration: requests / rate, warmup: 0, maxRequests: requests, dist: 'constant', timeoutMs: 30000 });
      if (totalErrors(r) > r.sent * 0.01) throw new TwinError(`under Valgrind the target failed ${totalErrors(r)} of ${r.sent} requests: lower valgrindRequests or check the target`);
    } finally {
      await target.stop();
    }
    const files = readdirSync(outDir).filter((f) => f.startsWith('cg.'));
    if (!files.length) throw new TwinError('cachegrind wrote no output: the target may have been killed before it exited');
    return files.map((f) => parseCachegrind(readFileSync(join(outDir, f), 'utf8'))).reduce(addTotals);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** Event totals of `2n` requests: the difference of two runs (n and 3n requests), so
 *  start-up and shutdown cancel out. */
async function differential(spec: LaunchSpec, w: Workload, g: Geometry): Promise<CgTotals> {
  const n = w.valgrindRequests;
  // A brisk rate keeps the time-driven work of background threads small beside the requests'.
  const rate = 1000;
  const small = await cachegrindRun(spec, w, g, n, rate);
  const large = await cachegrindRun(spec, w, g, 3 * n, rate);
  return subTotals(large, small);
}

/** Per-request CPU counters of a target on a simulated platform: a pair of runs with the
 *  LLC as last level, and with `withL2` another pair with the L2 as last level. */
export async function measureCpu(spec: LaunchSpec, w: Workload, platform: Platform = defaultPlatform(), withL2 = false): Promise<CpuCounters> {
  requireTool('valgrind', 'valgrind');
  const llc = await differential(spec, w, { I1: platform.I1, D1: platform.D1, LL: platform.LLC });
  const l2 = withL2 ? await differential(spec, w, { I1: platform.I1, D1: platform.D1, LL: platform.L2 }) : undefined;
  return countersFrom(llc, 2 * w.valgrindRequests, platform.name, l2);
}
