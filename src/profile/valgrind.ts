import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TwinError, type CpuCounters, type Platform, type Workload } from '../model/index.js';
import { runLoad, totalErrors } from '../measure/loadgen.js';
import { launchTarget, type LaunchSpec } from './target.js';
import { requireTool } from './bpftrace.js';

/** The default simulated platform: a Skylake-SP core (32 KiB 8-way L1s, 32 MiB 16-way LLC). */
export const SKYLAKE_SP: Platform = {
  name: 'skylake-sp',
  I1: { size: 32768, assoc: 8, line: 64 },
  D1: { size: 32768, assoc: 8, line: 64 },
  LL: { size: 33554432, assoc: 16, line: 64 },
};

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

export function countersFrom(t: CgTotals, requests: number, platform: string): CpuCounters {
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
  };
}

const geom = (g: Platform['I1']) => `${g.size},${g.assoc},${g.line}`;

/** One cachegrind run: start the target under Valgrind, preload, send `requests` requests,
 *  stop it; returns the event totals summed over its processes. */
async function cachegrindRun(spec: LaunchSpec, w: Workload, platform: Platform, requests: number, rate: number): Promise<CgTotals> {
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
      if (w.preload) await runLoad(w, target.port, { rate: 1, duration: 0.001, warmup: 0, preload: true, maxRequests: 1 });
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

/** Per-request CPU counters of a target, by difference of two runs (n and 3n requests), so
 *  start-up and shutdown cancel out. */
export async function measureCpu(spec: LaunchSpec, w: Workload, platform: Platform = SKYLAKE_SP): Promise<CpuCounters> {
  requireTool('valgrind', 'valgrind');
  const n = w.valgrindRequests;
  // A brisk rate keeps the time-driven work of background threads small beside the requests'.
  const rate = 1000;
  const small = await cachegrindRun(spec, w, platform, n, rate);
  const large = await cachegrindRun(spec, w, platform, 3 * n, rate);
  return countersFrom(subTotals(large, small), 2 * n, platform.name);
}
