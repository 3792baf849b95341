import { INSN_CLASSES, type InsnClass, type InsnMix } from '../model/index.js';

/** Instructions of its class in one iteration of a mix kernel (see generate/body.ts). */
export const UNROLL = 8;

/** The filler kernels: one per instruction class the body supplies by construction (no
 *  kernel divides: none of the shipped targets divides measurably). Each iteration is UNROLL
 *  instructions of its class plus the loop's own: what one iteration executes, by class. */
export const KERNELS: Partial<Record<InsnClass, Partial<Record<InsnClass, number>>>> = {
  alu: { alu: UNROLL + 1, cond: 1 },
  mul: { mul: UNROLL, alu: 1, cond: 1 },
  fp: { fp: UNROLL, alu: 1, cond: 1 },
  load: { load: UNROLL, alu: 1, cond: 1 },
  store: { store: UNROLL, alu: 1, cond: 1 },
  loadop: { loadop: UNROLL, alu: 1, cond: 1 },
  // Never-taken branches on the loop's flags.
  cond: { cond: UNROLL + 1, alu: 1 },
  jump: { jump: UNROLL, alu: 1, cond: 1 },
  // Each indirect jump's target is loaded by a lea.
  indirect: { indirect: UNROLL, alu: UNROLL + 1, cond: 1 },
  // UNROLL/2 calls and their returns.
  callret: { callret: UNROLL, alu: 1, cond: 1 },
  // lodsq, the pointer reset each iteration.
  string: { string: UNROLL, alu: 2, cond: 1 },
  other: { other: UNROLL, alu: 1, cond: 1 },
};
export const KERNEL_CLASSES = Object.keys(KERNELS) as InsnClass[];

export const kernelInsns = (k: InsnClass) => Object.values(KERNELS[k] ?? {}).reduce((a, b) => a + b, 0);

export type ClassCounts = Partial<Record<InsnClass, number>>;

/** Without a measured mix: an integer mix like a server's. */
const DEFAULT_SHARES: ClassCounts = { alu: 0.6, load: 0.2, store: 0.1, cond: 0.1 };

/** Filler iterations per request of each kernel, so that skeleton, fixed body parts and filler
 *  together have the original's mix: each class's count per request is the original's less
 *  the skeleton's and the fixed parts'; the kernels of the other classes are sized first, then
 *  the conditional-branch and ALU kernels take what their loops have not already supplied.
 *  The result is scaled to fill `budget` instructions. */
export function solveKernels(original: InsnMix | null, originalInsns: number, skeleton: InsnMix | null, skeletonInsns: number, fixed: ClassCounts, budget: number): ClassCounts {
  const want: ClassCounts = {};
  for (const c of INSN_CLASSES) {
    const o = (original ? original.shares[c] : DEFAULT_SHARES[c] ?? 0) * originalInsns;
    const s = skeleton ? skeleton.shares[c] * skeletonInsns : 0;
    want[c] = Math.max(0, o - s - (fixed[c] ?? 0));
  }
  const n: ClassCounts = {};
  const supplied: ClassCounts = {};
  const add = (k: InsnClass, iters: number) => {
    n[k] = iters;
    for (const [c, x] of Object.entries(KERNELS[k]!)) supplied[c as InsnClass] = (supplied[c as InsnClass] ?? 0) + x * iters;
  };
  for (const k of KERNEL_CLASSES) if (k !== 'alu' && k !== 'cond') add(k, (want[k] ?? 0) / UNROLL);
  add('cond', Math.max(0, (want.cond ?? 0) - (supplied.cond ?? 0)) / (UNROLL + 1));
  add('alu', Math.max(0, (want.alu ?? 0) - (supplied.alu ?? 0)) / (UNROLL + 1));
  const total = KERNEL_CLASSES.reduce((a, k) => a + (n[k] ?? 0) * kernelInsns(k), 0);
  const scale = total > 0 ? Math.max(0, budget) / total : 0;
  return Object.fromEntries(KERNEL_CLASSES.map((k) => [k, (n[k] ?? 0) * scale]));
}
