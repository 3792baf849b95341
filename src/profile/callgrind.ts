import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { CODE_SETS, INSN_CLASSES, TwinError, type Histogram, type InsnClass, type InsnMix } from '../model/index.js';
import { classify, X86_PREFIXES, type X86Insn } from './x86.js';

/** What callgrind counted at one instruction, summed over every function context it ran in. */
export interface InsnCost {
  /** Self instruction count (`Ir`): executions of the instruction. */
  ir: number;
  /** Conditional branches executed there (`Bc`, with --branch-sim=yes), else 0. */
  bc: number;
  /** Times the conditional branch there was taken (from `jcnd=` lines, --collect-jumps=yes). */
  taken: number;
  /** Times it executed, as the `jcnd=` lines say: only the function contexts in which it was
   *  taken at least once write one, so this can be short of `ir`. */
  execs: number;
}

/** One callgrind output file (or the difference of two): self costs per object and address.
 *  Addresses are object-relative, as objdump prints them for that file. */
export interface CallgrindRun {
  events: string[];
  /** The file's own totals per event (`totals:` lines summed, else `summary:`). */
  totals: Record<string, number>;
  objects: Map<string, Map<number, InsnCost>>;
}

/** One instruction of a disassembly. */
export interface DisasmInsn {
  /** The mnemonic with its prefixes (`rep stos`, `lock cmpxchg`). */
  mnemonic: string;
  operands: string;
  /** Bytes of machine code. */
  length: number;
}

/** Valgrind's own preloaded libraries run inside the target but are not its code. */
const isToolObject = (path: string) => path.includes('/valgrind/');

/** What the next position line is: a cost line; the inclusive cost of a call (not the
 *  instruction's own); or the source of a `jump=` or `jcnd=` line, whose counts go to it. */
type Pending = 'cost' | 'call' | 'jump' | 'cond';

/** Parses a callgrind.out file written with --dump-instr=yes (and, for branch counts,
 *  --collect-jumps=yes and --branch-sim=yes). Position compression (`+N`, `-N`, `*`) is
 *  relative to the last position line; the target positions of `calls=`, `jump=` and `jcnd=`
 *  lines are relative to it too but do not move it. */
export function parseCallgrind(text: string): CallgrindRun {
  let events: string[] | null = null;
  let positions = ['line'];
  let instrAt = -1;
  let irAt = -1;
  let bcAt = -1;
  let last: number[] = [0];
  let selfSums: number[] = [];
  let totals: number[] | null = null;
  let summary: number[] | null = null;
  const objects = new Map<string, Map<number, InsnCost>>();
  const objectNames = new Map<string, string>();
  let current: Map<number, InsnCost> | null = null;
  let pending: Pending = 'cost';
  let jcndTaken = 0;
  let jcndExecs = 0;

  const nameOf = (spec: string): string => {
    const m = /^\((\d+)\)\s*(.*)$/.exec(spec.trim());
    if (!m) return spec.trim();
    if (m[2]) objectNames.set(m[1], m[2]);
    return objectNames.get(m[1]) ?? `(${m[1]})`;
  };
  const costAt = (addr: number): InsnCost => {
    let c = current!.get(addr);
    if (!c) {
      c = { ir: 0, bc: 0, taken: 0, execs: 0 };
      current!.set(addr, c);
    }
    return c;
  };
  const numbers = (s: string) => s.trim().split(/\s+/).map(Number);

  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    const c = line.charCodeAt(0);
    const isPosition = (c >= 48 && c <= 57) || c === 43 /* + */ || c === 45 /* - */ || c === 42; /* * */
    if (isPosition) {
      if (!events) throw new TwinError('callgrind output has cost lines before its events: line: is this a callgrind.out file?');
      if (instrAt < 0) throw new TwinError('callgrind output has no instruction addresses: run callgrind with --dump-instr=yes');
      const tokens = line.split(' ');
      let t = 0;
      for (let p = 0; p < positions.length; p++) {
        while (tokens[t] === '') t++;
        const tok = tokens[t++] ?? '*';
        const t0 = tok.charCodeAt(0);
        if (t0 === 42) continue;
        else if (t0 === 43) last[p] += Number(tok.slice(1));
        else if (t0 === 45) last[p] -= Number(tok.slice(1));
        else last[p] = Number(tok);
      }
      const addr = last[instrAt];
      if (pending === 'call' || pending === 'jump') {
        pending = 'cost';
        continue;
      }
      if (pending === 'cond') {
        pending = 'cost';
        if (current) {
          const cost = costAt(addr);
          cost.taken += jcndTaken;
          cost.execs += jcndExecs;
        }
        continue;
      }
      let e = 0;
      let ir = 0;
      let bc = 0;
      for (; t < tokens.length; t++) {
        if (tokens[t] === '') continue;
        const v = Number(tokens[t]);
        if (e < selfSums.length) selfSums[e] += v;
        if (e === irAt) ir = v;
        else if (e === bcAt) bc = v;
        e++;
      }
      if (current && (ir > 0 || bc > 0)) {
        const cost = costAt(addr);
        cost.ir += ir;
        cost.bc += bc;
      }
      continue;
    }
    if (line.startsWith('ob=')) {
      const name = nameOf(line.slice(3));
      if (isToolObject(name)) current = null;
      else {
        current = objects.get(name) ?? new Map();
        objects.set(name, current);
      }
    } else if (line.startsWith('cob=')) {
      nameOf(line.slice(4));
    } else if (line.startsWith('calls=')) {
      pending = 'call';
    } else if (line.startsWith('jump=')) {
      pending = 'jump';
    } else if (line.startsWith('jcnd=')) {
      const m = /^jcnd=(\d+)\/(\d+)/.exec(line);
      if (!m) throw new TwinError(`callgrind output has a malformed line '${line.slice(0, 40)}': is the file cut short?`);
      jcndTaken = Number(m[1]);
      jcndExecs = Number(m[2]);
      pending = 'cond';
    } else if (line.startsWith('events:')) {
      events = line.slice(7).trim().split(/\s+/);
      irAt = events.indexOf('Ir');
      bcAt = events.indexOf('Bc');
      selfSums = events.map(() => 0);
    } else if (line.startsWith('positions:')) {
      positions = line.slice(10).trim().split(/\s+/);
      instrAt = positions.indexOf('instr');
      last = positions.map(() => 0);
    } else if (line.startsWith('totals:')) {
      const v = numbers(line.slice(7));
      totals = totals ? totals.map((x, i) => x + (v[i] ?? 0)) : v;
    } else if (line.startsWith('summary:')) {
      summary = numbers(line.slice(8));
    }
    // fl= fi= fe= fn= cfi= cfl= cfn= jfi= jfn= and the header lines name files and functions
    // or describe the run: nothing the mix needs.
  }
  if (!events) throw new TwinError('callgrind output has no events: line: is this a callgrind.out file, and was it written completely?');
  if (instrAt < 0) throw new TwinError('callgrind output has no instruction addresses: run callgrind with --dump-instr=yes');
  if (irAt < 0) throw new TwinError('callgrind output does not count Ir: run callgrind without --collect-atstart or event options that drop it');
  const fileTotals = totals ?? summary ?? selfSums;
  return { events, totals: Object.fromEntries(events.map((e, i) => [e, fileTotals[i] ?? 0])), objects };
}

/** Self costs per function name of one callgrind.out file (any `positions:`; names as
 *  callgrind compresses them, `fn=(id) name` once and `fn=(id)` after), summed over the
 *  objects that define a function of that name: the event totals of each function's own
 *  instructions, the inclusive costs of its calls left out. Read only for the clone's own
 *  functions (its body's parts); nothing of it is kept for an original. */
export function functionCosts(text: string): { events: string[]; functions: Map<string, number[]> } {
  let events: string[] | null = null;
  const names = new Map<string, string>();
  const functions = new Map<string, number[]>();
  let current: number[] | null = null;
  let positions = 1;
  let skipNext = false;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const c = line.charCodeAt(0);
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42) {
      if (skipNext) {
        skipNext = false;
        continue;
      }
      if (!current || !events) continue;
      const tokens = line.trim().split(/\s+/);
      for (let i = positions; i < tokens.length && i - positions < events.length; i++) current[i - positions] += Number(tokens[i]);
    } else if (line.startsWith('fn=')) {
      const m = /^\((\d+)\)\s*(.*)$/.exec(line.slice(3).trim());
      const name = m ? (m[2] ? (names.set(m[1], m[2]), m[2]) : names.get(m[1]) ?? `(${m[1]})`) : line.slice(3).trim();
      if (!events) throw new TwinError('callgrind output has functions before its events: line: is this a callgrind.out file?');
      current = functions.get(name) ?? events.map(() => 0);
      functions.set(name, current);
    } else if (line.startsWith('cfn=')) {
      const m = /^\((\d+)\)\s*(.+)$/.exec(line.slice(4).trim());
      if (m) names.set(m[1], m[2]);
    } else if (line.startsWith('calls=')) skipNext = true;
    else if (line.startsWith('events:')) events = line.slice(7).trim().split(/\s+/);
    else if (line.startsWith('positions:')) positions = line.slice(10).trim().split(/\s+/).length;
  }
  if (!events) throw new TwinError('callgrind output has no events: line: is this a callgrind.out file, and was it written completely?');
  return { events, functions };
}

/** `large - small` per object and address, clamped at 0: what `large`'s extra requests cost,
 *  with the start-up both runs share cancelled. */
export function subtractRuns(large: CallgrindRun, small: CallgrindRun): CallgrindRun {
  const objects = new Map<string, Map<number, InsnCost>>();
  for (const [path, costs] of large.objects) {
    const minus = small.objects.get(path);
    const out = new Map<number, InsnCost>();
    for (const [addr, l] of costs) {
      const s = minus?.get(addr);
      const d: InsnCost = s
        ? { ir: Math.max(0, l.ir - s.ir), bc: Math.max(0, l.bc - s.bc), taken: Math.max(0, l.taken - s.taken), execs: Math.max(0, l.execs - s.execs) }
        : { ...l };
      if (d.ir > 0 || d.bc > 0 || d.taken > 0 || d.execs > 0) out.set(addr, d);
    }
    objects.set(path, out);
  }
  const totals = Object.fromEntries(large.events.map((e) => [e, Math.max(0, (large.totals[e] ?? 0) - (small.totals[e] ?? 0))]));
  return { events: [...large.events], totals, objects };
}

/** Hot code per set of a 4 KiB period (see PortableCpu.codeSets): each line's executions per
 *  request (its most-run instruction's), at most 1, summed by set. Addresses are
 *  object-relative, and objects load page-aligned: a line's set is the same at run time. */
export function codeSets(run: CallgrindRun, requests: number): number[] {
  const sets = new Array<number>(CODE_SETS).fill(0);
  for (const costs of run.objects.values()) {
    const lines = new Map<number, number>();
    for (const [addr, c] of costs) {
      const line = Math.floor(addr / 64);
      lines.set(line, Math.max(lines.get(line) ?? 0, c.ir));
    }
    for (const [line, ir] of lines) sets[line % CODE_SETS] += Math.min(1, ir / Math.max(1, requests));
  }
  return sets;
}

/** Parses `objdump -d -w` output, with or without raw bytes (without them, an instruction's
 *  length is the distance to the next one in its section, 0 for a section's last). Given
 *  `only`, keeps the instructions at those addresses alone. */
export function parseObjdump(text: string, only?: ReadonlySet<number>): Map<number, DisasmInsn> {
  const code = new Map<number, DisasmInsn>();
  let previous: { addr: number; insn: DisasmInsn } | null = null;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    // Instruction lines are `   addr:\tbytes \tasm` or `   addr:\tasm`; the rest are headers.
    const colon = line.indexOf(':\t');
    if (colon < 0 || line.charCodeAt(0) !== 32) {
      if (line.startsWith('Disassembly of section')) previous = null;
      continue;
    }
    const addr = parseInt(line.slice(0, colon), 16);
    if (Number.isNaN(addr)) continue;
    if (previous) {
      previous.insn.length = addr - previous.addr;
      previous = null;
    }
    if (only && !only.has(addr)) continue;
    const tab = line.indexOf('\t', colon + 2);
    let asm: string;
    let length = 0;
    if (tab >= 0) {
      const bytes = line.slice(colon + 2, tab).trim();
      length = bytes.length > 0 ? (bytes.length + 1) / 3 : 0;
      asm = line.slice(tab + 1);
    } else {
      asm = line.slice(colon + 2);
    }
    const hash = asm.indexOf('#');
    asm = (hash >= 0 ? asm.slice(0, hash) : asm).trim();
    if (asm === '') continue; // a continuation line of bytes
    let space = asm.indexOf(' ');
    while (space > 0 && X86_PREFIXES.has(asm.slice(asm.lastIndexOf(' ', space - 1) + 1, space))) {
      const next = asm.indexOf(' ', space + 1);
      if (next < 0) break;
      space = next;
    }
    const insn: DisasmInsn = space < 0
      ? { mnemonic: asm, operands: '', length }
      : { mnemonic: asm.slice(0, space).replace(/ +/g, ' '), operands: asm.slice(space).trim(), length };
    code.set(addr, insn);
    previous = tab >= 0 ? null : { addr, insn };
  }
  return code;
}

/** A disassembly held for the process's life: all of an object, or the addresses asked so far. */
interface Disassembly {
  code: Map<number, DisasmInsn>;
  complete: boolean;
  asked: Set<number>;
}
const disassembled = new Map<string, Disassembly>();

/** The machine code of one object, from objdump: all of it, or, given `only`, at least the
 *  instructions at those addresses (much cheaper for a large library of which a run touches
 *  little). Empty where the object is no readable file (`???`, `[vdso]`) or belongs to
 *  valgrind. Cached for the process's life per file as it is: a clone rebuilt at the same
 *  path (each tuning iteration) is another file. */
export function disassemble(path: string, only?: ReadonlySet<number>): Map<number, DisasmInsn> {
  const version = objectVersion(path);
  if (version === null) return new Map();
  const held = disassembled.get(version);
  if (held && (held.complete || (only && [...only].every((a) => held.asked.has(a))))) return held.code;
  const asked = only ? new Set([...(held?.asked ?? []), ...only]) : null;
  const code = objdump(path, asked);
  disassembled.set(version, { code, complete: asked === null, asked: asked ?? new Set() });
  return code;
}

/** A readable object file's identity as it is now (path, inode, size, modification time),
 *  or null for none. */
function objectVersion(path: string): string | null {
  try {
    if (isToolObject(path) || !path.startsWith('/')) return null;
    const s = statSync(path);
    return s.isFile() ? `${path}\0${s.ino}\0${s.size}\0${s.mtimeMs}` : null;
  } catch {
    return null;
  }
}

/** Runs objdump over the whole object, or over the address range of `wanted` only. */
function objdump(path: string, wanted: Set<number> | null): Map<number, DisasmInsn> {
  const args = ['-d', '-w'];
  if (wanted) {
    if (wanted.size === 0) return new Map();
    let lo = Infinity;
    let hi = -Infinity;
    for (const a of wanted) {
      lo = Math.min(lo, a);
      hi = Math.max(hi, a);
    }
    // An x86 instruction is at most 15 bytes long.
    args.push(`--start-address=0x${lo.toString(16)}`, `--stop-address=0x${(hi + 16).toString(16)}`);
  }
  let out: string;
  try {
    out = execFileSync('objdump', [...args, path], { encoding: 'utf8', maxBuffer: 512 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TwinError('objdump not found: install binutils to read the instruction mix');
    }
    // Output past the buffer is no unknown object: its instructions would all count as other.
    if ((e as NodeJS.ErrnoException).code === 'ENOBUFS' || (e as NodeJS.ErrnoException).code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
      throw new TwinError(`objdump's listing of ${path} is over 512 MiB: the instruction mix cannot be read from it`);
    }
    // Not an object file objdump knows: its instructions count as unknown.
    return new Map();
  }
  return parseObjdump(out, wanted ?? undefined);
}

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
    shares: Object.fromEntries(INSN_CLASSES.map((c) => [c, share(count[c], total)])) as Record<InsnClass, number>,
    memShares: Object.fromEntries(INSN_CLASSES.map((c) => [c, share(memCount[c], count[c])])) as Record<InsnClass, number>,
    bbSizes: bbSizes.histogram(),
    takenRates: takenRates.histogram(),
    rawDistances: rawDistances.histogram(),
    unknownShare: share(unknown, total),
  };
}
