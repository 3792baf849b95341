import { INSN_CLASSES, type InsnClass, type InsnMix } from '../model/index.js';

export type ClassCounts = Partial<Record<InsnClass, number>>;

/** Instructions in one iteration of the mix loop: long enough that rounding a class's count
 *  to whole instructions moves its share by at most 0.4 percentage points. */
export const MIX_ITER = 128;

/** The classes the mix loop supplies (no divide: none of the shipped targets divides
 *  measurably, and a divide's latency would dominate the loop). */
export const MIX_CLASSES: InsnClass[] = INSN_CLASSES.filter((c) => c !== 'div');

/** One iteration of the mix loop: how many instructions of each class it holds (generate/body.ts
 *  lays them out), and how many iterations a request runs. */
export interface MixLoop {
  units: ClassCounts;
  itersPerReq: number;
}

/** What one iteration executes, by class, given its units: the units themselves, plus the
 *  loop's counter step and exit test, a lea per indirect jump (its target), the string
 *  pointer's reset, and one return per call (calls and returns come in pairs). */
export function iterationCounts(units: ClassCounts): ClassCounts {
  const out: ClassCounts = { ...units };
  out.alu = (out.alu ?? 0) + 1 + (units.indirect ?? 0) + ((units.string ?? 0) > 0 ? 1 : 0);
  out.cond = (out.cond ?? 0) + 1;
  return out;
}

export const iterationInsns = (units: ClassCounts) =>
  Object.values(iterationCounts(units)).reduce((a, b) => a + (b ?? 0), 0);

/** Without a measured mix: an integer mix like a server's. */
const DEFAULT_SHARES: ClassCounts = { alu: 0.6, load: 0.2, store: 0.1, cond: 0.1 };

/** Instructions per request of each class the body must still supply: the original's less the
 *  skeleton's and `fixed`, floored at 0. */
export function mixTargets(
  original: InsnMix | null,
  originalInsns: number,
  skeleton: InsnMix | null,
  skeletonInsns: number,
  fixed: ClassCounts,
): ClassCounts {
  const want: ClassCounts = {};
  for (const c of MIX_CLASSES) {
    const o = (original ? original.shares[c] : (DEFAULT_SHARES[c] ?? 0)) * originalInsns;
    const s = skeleton ? skeleton.shares[c] * skeletonInsns : 0;
    want[c] = Math.max(0, o - s - (fixed[c] ?? 0));
  }
  return want;
}

/** Classes a code block's operations can be of (besides its jump): a conditional branch comes
 *  with the test before it, a call with the return it reaches, `lodsq` with a reset of its
 *  pointer at the block's start. */
export const BLOCK_CLASSES: InsnClass[] = [
  'alu',
  'load',
  'store',
  'loadop',
  'mul',
  'cond',
  'callret',
  'string',
];

/** What one code block executes, by class, given its operations: a test per conditional
 *  branch, a return per call, the string pointer's reset in the blocks with string operations
 *  (spread evenly, a share of the blocks as large as their string operations a block), and
 *  the way to the next block: a test and a conditional branch the test makes always taken
 *  (a jump would add a class servers run little of, one per 64 bytes). */
export function blockCounts(units: ClassCounts): ClassCounts {
  const out: ClassCounts = { ...units };
  out.alu = (out.alu ?? 0) + (units.cond ?? 0) + Math.min(1, units.string ?? 0) + 1;
  out.callret = 2 * (units.callret ?? 0);
  out.cond = (out.cond ?? 0) + 1;
  return out;
}

/** A code block's `n` operations by class, so that `blocks` blocks a request execute what is
 *  still wanted of the block classes in its proportions, counting what each block executes
 *  besides its operations (see blockCounts: the way to the next block, a test per branch, a
 *  return per call, the string pointer's reset; with `blocks` 0, operations alone); ALU work
 *  where nothing is wanted. Fractions stand: the chain spreads each class over its blocks, so
 *  that a run of blocks holds the exact shares (generate/body.ts). */
export function blockUnits(want: ClassCounts, n: number, blocks = 0): ClassCounts {
  const per = (c: InsnClass) => (want[c] ?? 0) / (blocks > 0 ? blocks : 1);
  const u: ClassCounts = Object.fromEntries(BLOCK_CLASSES.map((c) => [c, per(c)]));
  if (blocks > 0) {
    u.cond = Math.max(0, per('cond') - 1);
    u.callret = per('callret') / 2;
    u.alu = Math.max(0, per('alu') - 1 - u.cond - Math.min(1, u.string!));
  }
  const total = BLOCK_CLASSES.reduce((a, c) => a + u[c]!, 0);
  if (total <= 0) return { alu: n };
  return Object.fromEntries(BLOCK_CLASSES.map((c) => [c, (u[c]! / total) * n]));
}

/** The mix loop, so that skeleton, fixed body parts and loop together have the original's
 *  mix: each class's count per request is the original's less the skeleton's and the fixed
 *  parts'; one iteration holds those counts scaled to MIX_ITER instructions (less what the
 *  loop adds by itself), rounded; as many iterations run as fill `budget` instructions. */
export function solveMix(
  original: InsnMix | null,
  originalInsns: number,
  skeleton: InsnMix | null,
  skeletonInsns: number,
  fixed: ClassCounts,
  budget: number,
): MixLoop {
  const want = mixTargets(original, originalInsns, skeleton, skeletonInsns, fixed);
  const total = MIX_CLASSES.reduce((a, c) => a + want[c]!, 0);
  if (total <= 0 || budget <= 0) return { units: {}, itersPerReq: 0 };
  const per = MIX_ITER / total;
  const units: ClassCounts = {};
  for (const c of MIX_CLASSES) units[c] = Math.round(want[c]! * per);
  units.callret = 2 * Math.round((want.callret! * per) / 2);
  // What the loop adds by itself comes out of the classes it adds to.
  units.cond = Math.max(0, units.cond! - 1);
  units.alu = Math.max(0, units.alu! - 1 - units.indirect! - (units.string! > 0 ? 1 : 0));
  return { units, itersPerReq: budget / iterationInsns(units) };
}

/** Instructions per request the mix loop executes, by class. */
export function mixCounts(m: MixLoop): ClassCounts {
  const it = iterationCounts(m.units);
  return Object.fromEntries(INSN_CLASSES.map((c) => [c, (it[c] ?? 0) * m.itersPerReq]));
}

/** `a` plus `times` x `b`, class by class. */
export function addCounts(a: ClassCounts, b: ClassCounts, times = 1): ClassCounts {
  const out: ClassCounts = { ...a };
  for (const [cls, n] of Object.entries(b))
    out[cls as keyof ClassCounts] = (out[cls as keyof ClassCounts] ?? 0) + (n ?? 0) * times;
  return out;
}
