import { z } from 'zod';

/** Instruction classes of the dynamic mix. A computing instruction with a memory source or
 *  a read-modify-write memory destination is `loadop`; plain moves from and to memory are
 *  `load` and `store` (push is a store, pop a load); `fp` is x87, SSE and AVX work on
 *  registers; `callret` is call (direct or not) and ret; `string` is movs/stos/cmps/scas/lods
 *  with or without rep; `other` is the rest (nop, endbr64, syscall, fences, atomics...). */
export const INSN_CLASSES = [
  'alu',
  'mul',
  'div',
  'fp',
  'load',
  'store',
  'loadop',
  'cond',
  'jump',
  'indirect',
  'callret',
  'string',
  'other',
] as const;
export const InsnClass = z.enum(INSN_CLASSES);
export type InsnClass = z.infer<typeof InsnClass>;

const share = z.number().min(0).max(1);

/** A distribution over bins with inclusive upper bounds; the last bin's bound is null (no
 *  bound). Shares sum to 1, or are all 0 where nothing was counted. */
export const Histogram = z.array(z.object({ upTo: z.number().nullable(), share }));
export type Histogram = z.infer<typeof Histogram>;

/** The dynamic instruction mix and the shape of the code, per request, from callgrind and
 *  the binaries' disassembly. Carries counts and shares only: no address, symbol or byte. */
export const InsnMix = z.object({
  /** Instructions counted per request (all processes of the target). */
  insnsPerReq: z.number().nonnegative(),
  /** Share of the dynamic instructions in each class. */
  shares: z.record(InsnClass, share),
  /** Per class, the share of its instructions that have a memory operand. */
  memShares: z.record(InsnClass, share),
  /** Basic-block executions by block size in instructions. */
  bbSizes: Histogram,
  /** Conditional-branch executions by the taken rate of their branch. */
  takenRates: Histogram,
  /** Register reads by the distance, in instructions, to the instruction that wrote the
   *  register in the same basic block; the null bin counts reads with no writer there. */
  rawDistances: Histogram,
  /** Share of the instructions whose machine code could not be read (no file, e.g. the vDSO). */
  unknownShare: share,
});
export type InsnMix = z.infer<typeof InsnMix>;

/** Misses per request of an LRU cache of `bytes` (64-byte lines): one point of a miss-ratio
 *  curve. A curve of such points is the cumulative LRU stack-distance histogram at cache-line
 *  granularity: the misses at `bytes` are the accesses whose reuse distance is larger. */
export const CurvePoint = z.object({
  bytes: z.number().int().positive(),
  missesPerReq: z.number().nonnegative(),
});
export type CurvePoint = z.infer<typeof CurvePoint>;

/** The curves' points up to this size are L1s, instruction fetches and data apart; larger
 *  ones are a unified last level behind an L1. A code line there competes with data lines,
 *  so a last-level point's instruction misses count the lines the data evicted too, and its
 *  data misses those the code evicted: only the sum is one cache's, and a last-level code
 *  point can exceed the L1 point below it. */
export const L1_CURVE_MAX = 128 << 10;

/** A curve's L1 points (see L1_CURVE_MAX). */
export const l1Points = (c: CurvePoint[]): CurvePoint[] => c.filter((p) => p.bytes <= L1_CURVE_MAX);

/** Sets of a 4 KiB period of 64-byte lines. */
export const CODE_SETS = 64;

/** What a target's user-space work costs per request, independent of any one platform: the
 *  instruction count, the data and instruction miss-ratio curves measured by a sweep of
 *  simulated cache sizes, the simulated branch predictor's misses, and the mix. */
export const PortableCpu = z.object({
  requests: z.number().int().nonnegative(),
  insnsPerReq: z.number().nonnegative(),
  dataRefsPerReq: z.number().nonnegative(),
  /** Data-access misses per request by cache size, ascending. */
  dataCurve: z.array(CurvePoint),
  /** Instruction-fetch misses per request by cache size, ascending: the footprint curve. */
  codeCurve: z.array(CurvePoint),
  /** Misses per request of a lower-associativity L1 at one of the curve's sizes: how much the
   *  target's own layout conflicts in sets (what a fully associative reuse distance misses). */
  conflict: z.object({
    bytes: z.number().int().positive(),
    assoc: z.number().int().positive(),
    dataMissesPerReq: z.number().nonnegative(),
    codeMissesPerReq: z.number().nonnegative(),
  }),
  condBranchesPerReq: z.number().nonnegative(),
  indirectPerReq: z.number().nonnegative(),
  /** Mispredictions per request of Valgrind's predictor, the same on every platform. */
  branchMissesPerReq: z.number().nonnegative(),
  mix: InsnMix.nullable(),
  /** The clone's skeleton only (the original's layout is none of the clone's business): its
   *  hot code per set of a 4 KiB period, the 64 sets of a 32 KiB 8-way L1, each line counted
   *  by its executions per request up to 1. The chain's segments are laid out around it. */
  codeSets: z.array(z.number().nonnegative()).length(CODE_SETS).optional(),
});
export type PortableCpu = z.infer<typeof PortableCpu>;
