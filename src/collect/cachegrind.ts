import { TwinError, type CpuCounters, type Platform } from '../model/index.js';

export const CG_EVENTS = [
  'Ir',
  'I1mr',
  'ILmr',
  'Dr',
  'D1mr',
  'DLmr',
  'Dw',
  'D1mw',
  'DLmw',
  'Bc',
  'Bcm',
  'Bi',
  'Bim',
] as const;
export type CgTotals = Record<(typeof CG_EVENTS)[number], number>;

/** The `events:` and `summary:` lines of a cachegrind.out file: event totals only (the rest
 *  of the file names the original's functions and is never read). */
export function parseCachegrind(text: string): CgTotals {
  const events = /^events:\s*(.+)$/m.exec(text)?.[1].trim().split(/\s+/);
  const summary = /^summary:\s*(.+)$/m.exec(text)?.[1].trim().split(/\s+/).map(Number);
  if (!events || !summary)
    throw new TwinError(
      'cachegrind output has no events or summary line: was the target killed before it could write it?',
    );
  const totals = { ...ZERO_TOTALS };
  events.forEach((e, i) => {
    if (e in totals) totals[e as keyof CgTotals] = summary[i] ?? 0;
  });
  return totals;
}

export const ZERO_TOTALS = Object.freeze(Object.fromEntries(CG_EVENTS.map((e) => [e, 0]))) as CgTotals;

export function addTotals(a: CgTotals, b: CgTotals): CgTotals {
  return Object.fromEntries(CG_EVENTS.map((e) => [e, a[e] + b[e]])) as CgTotals;
}

export function subTotals(a: CgTotals, b: CgTotals): CgTotals {
  return Object.fromEntries(CG_EVENTS.map((e) => [e, Math.max(0, a[e] - b[e])])) as CgTotals;
}

const ratio = (a: number, b: number) => (b > 0 ? Math.min(1, a / b) : 0);

const mpki = (misses: number, insns: number) => (insns > 0 ? (1000 * misses) / insns : 0);

/** Counters per request from the totals of the LLC run, and, when given, of the L2 run (and,
 *  given the platform's caches, each pair's simulated caches and misses). */
export function countersFrom(
  t: CgTotals,
  requests: number,
  platform: string,
  l2?: CgTotals,
  caches?: Pick<Platform, 'I1' | 'D1' | 'L2' | 'LLC'>,
): CpuCounters {
  const pair = (x: CgTotals, LL: Platform['LLC'] | undefined) => ({
    insnsPerReq: x.Ir / requests,
    branchMpki: mpki(x.Bcm + x.Bim, x.Ir),
    ...(caches && LL
      ? {
          caches: { I1: geom(caches.I1), D1: geom(caches.D1), LL: geom(LL) },
          I1Mpki: mpki(x.I1mr, x.Ir),
          D1Mpki: mpki(x.D1mr + x.D1mw, x.Ir),
          LLMpki: mpki(x.ILmr + x.DLmr + x.DLmw, x.Ir),
        }
      : {}),
  });
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
    pairs: requests > 0 ? [pair(t, caches?.LLC), ...(l2 ? [pair(l2, caches?.L2)] : [])] : [],
  };
}

export const geom = (g: Platform['I1']) => `${g.size},${g.assoc},${g.line}`;
