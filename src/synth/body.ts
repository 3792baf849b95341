import type { Profile } from '../model/index.js';

/** Instructions per unit of each part of the generated body (see generate/body.ts). */
export const FILLER_INSNS = 12; // one iteration of the filler kernel (L1-resident)
export const BLOCK_INSNS = 6; // one code block of the chain
export const HARD_INSNS = 6.5; // one random branch with its PRNG step (the skip half the time)
export const RING_INSNS = 3; // one pointer-chasing load with its loop step

/** Ring sizes in 64-byte lines, chosen against every shipped platform: past the largest L1d
 *  (64 KiB) and within the smallest L2 (256 KiB); past the largest L2 (1 MiB) and within
 *  the smallest LLC (16 MiB); past the largest LLC (32 MiB). A ring walked in its cyclic
 *  order misses every time in a cache smaller than itself and hits in a larger one. */
export const RING_LINES = { d1: 2048, l2: 65536, llc: 1048576 } as const;
/** Blocks of the code chain: 128 KiB of code, past every platform's L1i. */
export const CHAIN_BLOCKS = 2048;
export const STATE_BYTES = 128;
export const FILLER_BYTES = 4096;

export interface BodyPlan {
  insnsPerReq: number;
  codeBlocksPerReq: number;
  hardBranchesPerReq: number;
  ringLoadsPerReq: { d1: number; l2: number; llc: number };
  /** Filler iterations per request: the instruction budget left after the other parts. */
  fillerPerReq: number;
  chainBlocks: number;
  ringLines: { d1: number; l2: number; llc: number };
  memBytes: number;
}

/** Instructions of body work per request: the tuned knob, or the original's instruction
 *  count scaled by the what-if knob. Before tuning, 85% of the original's count is a start
 *  that leaves room for the clone's own skeleton; tuning corrects it. */
export function bodyInsnsPerReq(p: Profile): number {
  const base = p.knobs.bodyInsnsPerReq ?? 0.85 * p.body.cpu.insnsPerReq;
  return Math.max(0, base * p.knobs.insnScale);
}

/** Start values of the CPU knobs from the original's misses per request; tuning then
 *  removes what the clone's own skeleton adds. */
export function initialKnobs(p: Profile): Pick<Profile['knobs'], 'codeBlocksPerReq' | 'hardBranchesPerReq' | 'ringLoadsPerReq'> {
  const c = p.body.cpu;
  const perReq = (mpki: number) => (mpki * c.insnsPerReq) / 1000;
  const l2 = c.L2Mpki ?? c.D1Mpki;
  return {
    codeBlocksPerReq: perReq(c.I1Mpki),
    hardBranchesPerReq: perReq(c.branchMpki) / 0.5,
    ringLoadsPerReq: { d1: perReq(Math.max(0, c.D1Mpki - l2)), l2: perReq(Math.max(0, l2 - c.LLCMpki)), llc: perReq(c.LLCMpki) },
  };
}

const at = (x: number, min: number) => (x >= min ? x : 0);

/** The body's parts per request, from the knobs (or their start values). */
export function bodyPlan(p: Profile): BodyPlan {
  const k = { ...initialKnobs(p), ...Object.fromEntries(Object.entries(p.knobs).filter(([, v]) => v !== null)) } as Required<Profile['knobs']>;
  const codeBlocksPerReq = at(k.codeBlocksPerReq ?? 0, 0.01);
  const hardBranchesPerReq = at(k.hardBranchesPerReq ?? 0, 0.01);
  const rings = k.ringLoadsPerReq ?? { d1: 0, l2: 0, llc: 0 };
  const ringLoadsPerReq = { d1: at(rings.d1, 0.01), l2: at(rings.l2, 0.01), llc: at(rings.llc, 0.01) };
  const insnsPerReq = bodyInsnsPerReq(p);
  const used = codeBlocksPerReq * BLOCK_INSNS + hardBranchesPerReq * HARD_INSNS + (ringLoadsPerReq.d1 + ringLoadsPerReq.l2 + ringLoadsPerReq.llc) * RING_INSNS;
  const ringLines = {
    d1: ringLoadsPerReq.d1 > 0 ? RING_LINES.d1 : 0,
    l2: ringLoadsPerReq.l2 > 0 ? RING_LINES.l2 : 0,
    llc: ringLoadsPerReq.llc > 0 ? RING_LINES.llc : 0,
  };
  const bytes = STATE_BYTES + FILLER_BYTES + 64 * (ringLines.d1 + ringLines.l2 + ringLines.llc);
  return {
    insnsPerReq,
    codeBlocksPerReq,
    hardBranchesPerReq,
    ringLoadsPerReq,
    fillerPerReq: Math.max(0, insnsPerReq - used) / FILLER_INSNS,
    chainBlocks: codeBlocksPerReq > 0 ? CHAIN_BLOCKS : 0,
    ringLines,
    memBytes: Math.ceil(bytes / 4096) * 4096,
  };
}
