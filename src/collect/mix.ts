import { INSN_CLASSES, type Histogram, type InsnClass, type InsnMix } from '../model/index.js';
import { isToolObject, type CallgrindRun } from './callgrind.js';
import { disassemble, type DisasmInsn } from './objdump.js';
import { classify, type X86Insn } from './x86.js';

/** Histogram bins: inclusive upper bounds, the last one null (no bound). */
const BB_SIZE_BINS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, null];
const TAKEN_RATE_BINS = [0, 0.01, 0.1, 0.3, 0.7, 0.9, 0.99, 1, null];
const RAW_DISTANCE_BINS = [1, 2, 3, 4, 6, 8, 16, null];

class Bins {
  private readonly weights: number[];
  constructor(private readonly bounds: (number | null)[]) {
    this.weights = bounds.map(() => 0);
  }
  /** Adds `weight` at `value`; a null value goes to the unbounded bin. */
  add(value: number | null, weight: number): void {
    let i = this.bounds.length - 1;
    if (value !== null) {
      const j = this.bounds.findIndex((b) => b !== null && value <= b);
      if (j >= 0) i = j;
    }
    this.weights[i] += weight;
  }
  histogram(): Histogram {
    const total = this.weights.reduce((a, b) => a + b, 0);
    return this.bounds.map((upTo, i) => ({ upTo, share: total > 0 ? this.weights[i] / total : 0 }));
  }
}

const CONTROL: ReadonlySet<InsnClass> = new Set(['cond', 'jump', 'indirect', 'callret']);

/**
 * The dynamic instruction mix of a run, per request. Each executed instruction is classified
 * from the disassembly of its object; one that is not there counts as `other` and into
 * unknownShare, and is left out of the three histograms (its block is unknown). Dynamic
 * basic blocks are runs of executed instructions, in address order, that are contiguous in
 * the code, have the same count as the block's first, and end at a branch, call, return or
 * syscall; a block runs as often as its first instruction. Register read-after-write
 * distances are measured inside these blocks. A branch's taken rate is its `jcnd=` taken
 * count over its `Bc` count, or over its own `Ir` without branch simulation (the `jcnd=`
 * execution counts miss the contexts where it was never taken). The result holds counts and
 * shares only. `code` gives an object's instructions at (at least) the given addresses.
 */
export function insnMix(
  run: CallgrindRun,
  requests: number,
  code: (path: string, addrs: ReadonlySet<number>) => Map<number, DisasmInsn> = disassemble,
): InsnMix {
  const count = Object.fromEntries(INSN_CLASSES.map((c) => [c, 0])) as Record<InsnClass, number>;
  const memCount = Object.fromEntries(INSN_CLASSES.map((c) => [c, 0])) as Record<InsnClass, number>;
  const bbSizes = new Bins(BB_SIZE_BINS);
  const takenRates = new Bins(TAKEN_RATE_BINS);
  const rawDistances = new Bins(RAW_DISTANCE_BINS);
  const classified = new Map<string, X86Insn>();
  let total = 0;
  let unknown = 0;

  for (const [path, costs] of run.objects) {
    if (isToolObject(path)) continue;
    const addrs = [...costs.keys()].filter((a) => costs.get(a)!.ir > 0).sort((a, b) => a - b);
    const insns = code(path, new Set(addrs));
    // The open block: executions, size, where it continues, and the last writer of each register.
    let blockIr = 0;
    let blockSize = 0;
    let nextAddr = -1;
    const writtenAt = new Map<string, number>();
    const closeBlock = () => {
      if (blockSize > 0) bbSizes.add(blockSize, blockIr);
      blockSize = 0;
      nextAddr = -1;
      writtenAt.clear();
    };
    for (const addr of addrs) {
      const cost = costs.get(addr)!;
      const ir = cost.ir;
      total += ir;
      const insn = insns.get(addr);
      if (!insn) {
        closeBlock();
        unknown += ir;
        count.other += ir;
        continue;
      }
      const key = `${insn.mnemonic}\t${insn.operands}`;
      let k = classified.get(key);
      if (!k) {
        k = classify(insn.mnemonic, insn.operands);
        classified.set(key, k);
      }
      count[k.cls] += ir;
      if (k.mem) memCount[k.cls] += ir;
      if (cost.bc > 0 || k.cls === 'cond') {
        const execs = cost.bc > 0 ? cost.bc : ir;
        takenRates.add(Math.min(1, cost.taken / execs), execs);
      }
      if (blockSize === 0 || addr !== nextAddr || ir !== blockIr) {
        closeBlock();
        blockIr = ir;
      }
      for (const r of k.reads) {
        const at = writtenAt.get(r);
        rawDistances.add(at === undefined ? null : blockSize - at, ir);
      }
      for (const w of k.writes) writtenAt.set(w, blockSize);
      blockSize++;
      nextAddr = addr + insn.length;
      if (k.endsBlock || CONTROL.has(k.cls) || insn.length === 0) closeBlock();
    }
    closeBlock();
  }

  const share = (n: number, d: number) => (d > 0 ? Math.min(1, n / d) : 0);
  return {
    insnsPerReq: requests > 0 ? total / requests : 0,
    shares: Object.fromEntries(INSN_CLASSES.map((c) => [c, share(count[c], total)])) as Record<
      InsnClass,
      number
    >,
    memShares: Object.fromEntries(INSN_CLASSES.map((c) => [c, share(memCount[c], count[c])])) as Record<
      InsnClass,
      number
    >,
    bbSizes: bbSizes.histogram(),
    takenRates: takenRates.histogram(),
    rawDistances: rawDistances.histogram(),
    unknownShare: share(unknown, total),
  };
}
