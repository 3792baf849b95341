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

/** The dynamic instruction mix and the shape of the code, per request, of the serving
 *  threads (twinreuse's per-instruction counts) and the binaries' disassembly. Carries counts and shares only: no address, symbol or byte. */
export const InsnMix = z.object({
  /** Instructions counted per request (the serving threads of all the target's processes). */
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

/** The L1 sizes a clone is built to hold on (the random platforms' L1s are drawn from them). */
export const L1_SIZES = { lo: 16 << 10, hi: 128 << 10 };

/** A curve's L1 points (see L1_CURVE_MAX). */
export const l1Points = (c: CurvePoint[]): CurvePoint[] => c.filter((p) => p.bytes <= L1_CURVE_MAX);

/** One access stream's LRU positions, per request: for each log2 set count k from `lo` to
 *  `hi`, `counts[k - lo][p]` accesses found their 64-byte line at position p of its set's
 *  recency order (0: the most recent), p = 16 not among the 16 most recent. An LRU cache of
 *  2^k sets and A ways (A <= 16) misses the accesses at positions A and up. A difference of
 *  two runs: a count may fall below zero by noise. */
export const ReuseStreamTable = z.object({
  lo: z.number().int().nonnegative(),
  hi: z.number().int().nonnegative(),
  counts: z.array(z.array(z.number()).length(17)),
});
export type ReuseStreamTable = z.infer<typeof ReuseStreamTable>;

/** The LRU stack distances of a target's accesses by set count: every cache geometry's misses
 *  per request (1 KiB to 64 MiB, 1 to 16 ways), of code fetches (I), data accesses (D), both in
 *  one stream (U, a unified last level), U's code accesses (UI) and U's sequential data
 *  accesses (US: next to one of the last few data lines, as a copy's or a scan's are, which a
 *  core's prefetchers see coming). Counts only. */
export const ReuseTable = z.object({
  I: ReuseStreamTable,
  D: ReuseStreamTable,
  U: ReuseStreamTable,
  UI: ReuseStreamTable,
  US: ReuseStreamTable.optional(),
});
export type ReuseTable = z.infer<typeof ReuseTable>;

/** Misses per request of an LRU cache of `size` bytes and `assoc` ways (64-byte lines) on one
 *  stream of a table (of a difference, possibly below 0); null where the table does not hold that geometry (more than
 *  16 ways, a set count out of its range or not a power of two). */
export function tableMisses(t: ReuseStreamTable, size: number, assoc: number): number | null {
  const k = Math.log2(size / 64 / assoc);
  if (!Number.isInteger(k) || k < t.lo || k > t.hi || assoc < 1 || assoc > 16) return null;
  return t.counts[k - t.lo].slice(assoc).reduce((a, c) => a + c, 0);
}

/** The geometries of a reuse curve (KiB and ways): sizes about 1.2 to 1.5 times apart, each at
 *  12 to 16 ways, where a cache's misses are those of the reuse distances (an LRU cache of
 *  every line, to within a few percent) and not of how lines share sets. Set counts must be
 *  powers of two, so sizes between two powers of two take 10, 12 or 14 ways. L1s are followed
 *  from 8 to 128 KiB, last levels from 256 KiB to 64 MiB. */
export const REUSE_CURVE_L1: [number, number][] = [
  [8, 16],
  [12, 12],
  [16, 16],
  [20, 10],
  [24, 12],
  [28, 14],
  [32, 16],
  [40, 10],
  [48, 12],
  [64, 16],
  [96, 12],
  [128, 16],
];
export const REUSE_CURVE_LL: [number, number][] = [
  [256, 16],
  [384, 12],
  [512, 16],
  [768, 12],
  [1024, 16],
  [1536, 12],
  [2048, 16],
  [3072, 12],
  [4096, 16],
  [6144, 12],
  [8192, 16],
  [12288, 12],
  [16384, 16],
  [24576, 12],
  [32768, 16],
  [49152, 12],
  [65536, 16],
];

/** A table's reuse curves (misses per request at REUSE_CURVE_L1 and _LL, at least 0): code
 *  fetches at the L1 sizes (`code`); data accesses at the L1 sizes and, at the last levels,
 *  the unified stream's data accesses (`data`), as a unified cache misses them; and the
 *  unified stream's code accesses at the last levels (`codeLL`). */
export function reuseCurves(t: ReuseTable): { data: CurvePoint[]; code: CurvePoint[]; codeLL: CurvePoint[] } {
  const at = (s: ReuseStreamTable, [kib, ways]: [number, number]) => ({
    bytes: kib << 10,
    missesPerReq: Math.max(0, tableMisses(s, kib << 10, ways) ?? 0),
  });
  const codeLL = REUSE_CURVE_LL.map((g) => at(t.UI, g));
  return {
    data: [
      ...REUSE_CURVE_L1.map((g) => at(t.D, g)),
      ...REUSE_CURVE_LL.map((g, k) => ({
        bytes: g[0] << 10,
        missesPerReq: Math.max(0, at(t.U, g).missesPerReq - codeLL[k].missesPerReq),
      })),
    ],
    code: REUSE_CURVE_L1.map((g) => at(t.I, g)),
    codeLL,
  };
}

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
  /** Instructions a request ran after its reply: from a send on a socket to the thread's next
   *  look for work (a receive on a socket, whatever it finds; an accept; a wait), by the sends
   *  made between (a bit each: write 1, writev 2, sendto 4,
   *  sendmsg 8). Apache formats its log line and clears the request's memory once its `writev`
   *  is out: work out of the request's latency. */
  afterInsnsPerReq: z.array(z.number().nonnegative()).length(16).optional(),
  /** Loads a request whose address came from the data the load d before read (d = 1 to 16,
   *  at index d - 1; from 16 bytes before it to 256 past): a pointer chase, one load waiting on another, the
   *  chains a core cannot overlap where loads from a register's base overlap freely. */
  chasePerReq: z.array(z.number().nonnegative()).length(16).optional(),
  /** The clone's skeleton only (the original's layout is none of the clone's business): its
   *  hot code per set of a 4 KiB period, the 64 sets of a 32 KiB 8-way L1, each line counted
   *  by its executions per request up to 1. The chain's segments are laid out around it. */
  codeSets: z.array(z.number().nonnegative()).length(CODE_SETS).optional(),
  /** Every LRU geometry's misses (twinreuse's positions), of the same requests as the curves. */
  reuse: ReuseTable.optional(),
});
export type PortableCpu = z.infer<typeof PortableCpu>;

/** Serial steps of a request's loads, from its chased loads by distance (PortableCpu's
 *  chasePerReq: the loads whose address came from the data the load d before read): each
 *  counts 1/d. A load that waits on the one before it (a list walked, d = 1) is a step of its
 *  own, at the load's full latency; loads waiting on the one d back are d chains interleaved,
 *  which a core walks side by side, d loads a step; a load from a register's base waits on
 *  none. N loads in one chain are N steps, in d chains N/d. Null without the counts. */
export function chainSteps(chase: number[] | undefined): number | null {
  return chase ? chase.reduce((a, c, i) => a + c / (i + 1), 0) : null;
}
