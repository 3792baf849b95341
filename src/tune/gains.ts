import type { Profile } from '../model/index.js';

export type Group = 'data' | 'code' | 'branch' | 'conflict' | 'codeConflict';

/** The figures each group's knobs are set by. */
export const GROUPS: Record<Group, (k: string) => boolean> = {
  data: (k) => (k.startsWith('D@') || k.startsWith('L@')) && !k.endsWith('w'),
  code: (k) => k.startsWith('I@') && !k.endsWith('w'),
  branch: (k) => k === 'branch',
  conflict: (k) => k.startsWith('D@') && k.endsWith('w'),
  codeConflict: (k) => k.startsWith('I@') && k.endsWith('w'),
};

/** The figures each group's step answers for when an iteration does worse: its own, and for
 *  the rings and segments the low-associativity point as well, which their loads and sizes
 *  move as much as the crowd groups do: with the groups alone blamed, the next
 *  iteration would run the same segments again (see docs/tuner.md, gains and blame). */
export const BLAME: Record<Group, (k: string) => boolean> = {
  ...GROUPS,
  data: (k) => GROUPS.data(k) || GROUPS.conflict(k),
  code: (k) => GROUPS.code(k) || GROUPS.codeConflict(k),
};

/** The groups that shape the curves (the rest: the random branches). */
export const CURVE_GROUPS: Group[] = ['data', 'code', 'conflict', 'codeConflict'];

/** The knobs each group's step sets. */
export const GROUP_KNOBS: Record<Group, (keyof Profile['knobs'])[]> = {
  data: ['dataLoads', 'dataLines'],
  code: ['codeBlocks', 'codeLines'],
  branch: ['hardBranchesPerReq'],
  conflict: ['crowd'],
  codeConflict: ['codeCrowd'],
};

/** A group's next gain: halved (to a quarter at least) when the error that was its worst has
 *  changed sign and is still off target, an overshoot; raised by half (to 1 at most) when
 *  that error kept its sign and shrank by less than half. */
export function adaptGain(
  gain: number,
  prev: Record<string, number> | null,
  now: Record<string, number>,
  inGroup: (k: string) => boolean,
): number {
  if (!prev) return gain;
  let worst: string | null = null;
  for (const k of Object.keys(prev))
    if (inGroup(k) && (worst === null || Math.abs(prev[k]) > Math.abs(prev[worst]))) worst = k;
  if (worst === null || Math.abs(prev[worst]) <= 1 || now[worst] === undefined) return gain;
  if (Math.sign(now[worst]) !== Math.sign(prev[worst]) && Math.abs(now[worst]) > 1)
    return Math.max(0.25, gain / 2);
  if (Math.abs(now[worst]) > 0.5 * Math.abs(prev[worst])) return Math.min(1, gain * 1.5);
  return gain;
}

/** Whether two sets of knobs are the same to a part in a thousand, every number of them. */
export function sameKnobs(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number')
    return Math.abs(a - b) <= 1e-3 * Math.max(Math.abs(a), Math.abs(b), 1e-9);
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) =>
      sameKnobs((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    );
  }
  return a === b;
}

/** Whether a group's largest error (in tolerances, where off target) grew from `prev` to
 *  `now`. */
export function groupWorse(
  prev: Record<string, number> | null,
  now: Record<string, number>,
  inGroup: (k: string) => boolean,
): boolean {
  const worst = (e: Record<string, number>) =>
    Math.max(
      1,
      ...Object.entries(e)
        .filter(([k]) => inGroup(k))
        .map(([, v]) => Math.abs(v)),
    );
  return !prev || worst(now) > worst(prev);
}
