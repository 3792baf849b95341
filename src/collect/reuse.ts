import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { tableMisses, TwinError, type Platform } from '../model/index.js';
import { ZERO_TOTALS, type CgTotals } from './cachegrind.js';
import type { InsnCost } from './callgrind.js';
import type { Geometry } from './sweep.js';

/** The folder VALGRIND_LIB names for twinreuse, Twin's own Valgrind tool (reuse/twinreuse.c):
 *  the tool beside links to Valgrind's own files. */
export const REUSE_LIB = join(fileURLToPath(new URL('../../../', import.meta.url)), 'reuse/build/lib');

/** The three streams the tool follows: code lines (an L1 instruction cache's), data lines (an
 *  L1 data cache's), and both in order (a unified last level, unfiltered by the L1s); UI is
 *  the unified stream's code accesses, the rest of U its data accesses, and US those of its
 *  data accesses next to a recent data line (sequential: a copy's, a scan's). */
export type ReuseStream = 'I' | 'D' | 'U' | 'UI' | 'US';

/** Ways the tool follows in every set: positions 0 to WAYS - 1, and WAYS for a line not held. */
export const REUSE_WAYS = 16;

/** What twinreuse counted in one run, or a difference or sum of runs: for each stream and
 *  each log2 set count k from `lo` to `hi`, `counts[k - lo][p]` accesses found their line at
 *  LRU position p of its set (p = REUSE_WAYS: not among the set's 16 most recent). */
export interface ReuseCounts {
  instructions: number;
  /** Conditional and indirect branches, and their mispredictions (reuse/twinreuse.c). */
  branches: { cond: number; condMisses: number; indirect: number; indirectMisses: number };
  streams: Record<ReuseStream, { lo: number; hi: number; counts: number[][] }>;
  /** Instructions run from a send on a socket to the thread's next look for work (a receive on
   *  a socket, whatever it finds; an accept; a wait), by the sends made between (a bit each: write 1, writev 2, sendto 4, sendmsg 8; SEND_MASKS
   *  entries); absent from the tool's older output. */
  after?: number[];
  /** Loads whose address lies near the value the load d before read (16 bytes before it to
   *  256 past; of several, the nearest value below the address, the latest of equals; d = 1 to
   *  CHASE_DISTANCES, at index d - 1): loads that wait on another's data; absent from the
   *  tool's older output. */
  chase?: number[];
}

export const SEND_MASKS = 16;
export const CHASE_DISTANCES = 16;

/** One thread of a run: its counts (the accesses it made, in the cache all threads share),
 *  its read and write calls of every kind (`io`) and all its system calls. */
export interface ReuseThread extends ReuseCounts {
  id: number;
  io: number;
  syscalls: number;
}

/** A run's counts over all its threads, and each thread's; with `--parts`, each part's (a
 *  function whose name has the prefix given: its own instructions, accesses and branches, on
 *  the threads that fed the caches). */
export interface ReuseRun extends ReuseCounts {
  threads: ReuseThread[];
  parts: Map<string, ReuseCounts>;
  /** With `--instrs`: each instruction's counts on the threads that fed the caches, by object
   *  and address in it (as objdump prints it); else empty. */
  code: InsnCounts;
}

/** Per-instruction counts by object file and object-relative address. */
export type InsnCounts = Map<string, Map<number, InsnCost>>;

/** Parses the tool's output file (see reuse/twinreuse.c). */
export function parseReuse(text: string): ReuseRun {
  const lines = text.split('\n').filter(Boolean);
  // 3: a cache walk's output (no window after a reply); 5: no chased loads; 6: today's; 4
  // ended the window at a receive of data, a window that read a server's whole body as after
  // its reply.
  if (!/^twinreuse [356]$/.test(lines[0] ?? ''))
    throw new TwinError(
      'twinreuse wrote an output of another version: run scripts/bootstrap.sh to build it again',
    );
  const insns = /^instructions (\d+)$/.exec(lines[1] ?? '');
  if (!insns) throw new TwinError('twinreuse wrote no instruction count');
  const threads: ReuseThread[] = [];
  const parts = new Map<string, ReuseCounts>();
  let streams: Partial<ReuseCounts['streams']> = {};
  let cur: ReuseCounts['streams'][ReuseStream] | null = null;
  const code: InsnCounts = new Map();
  let object: Map<number, InsnCost> | null = null;
  // The thread or part whose lines follow.
  let owner: ReuseCounts | null = null;
  for (const line of lines.slice(2)) {
    const f = line.split(' ');
    if (f[0] === 'i' && object && f.length === 5) {
      const [execs, bc, taken] = f.slice(2).map(Number);
      object.set(parseInt(f[1], 16), { ir: execs, bc, taken, execs });
      continue;
    }
    if (f[0] === 'object') {
      const name = line.slice('object '.length);
      object = code.get(name) ?? new Map<number, InsnCost>();
      code.set(name, object);
      cur = null;
      continue;
    }
    const t =
      /^thread (\d+) instructions (\d+) io (\d+) syscalls (\d+) cond (\d+) (\d+) indirect (\d+) (\d+)$/.exec(
        line,
      );
    if (t) {
      streams = {};
      cur = null;
      const [id, instructions, io, syscalls, cond, condMisses, indirect, indirectMisses] = t
        .slice(1)
        .map(Number);
      const th: ReuseThread = {
        id,
        instructions,
        io,
        syscalls,
        branches: { cond, condMisses, indirect, indirectMisses },
        streams: streams as ReuseCounts['streams'],
      };
      threads.push(th);
      owner = th;
      continue;
    }
    const after = /^after (\d+) (\d+)$/.exec(line);
    if (after && threads.length && Number(after[1]) < SEND_MASKS) {
      const th = threads[threads.length - 1];
      th.after ??= new Array<number>(SEND_MASKS).fill(0);
      th.after[Number(after[1])] = Number(after[2]);
      continue;
    }
    if (f[0] === 'chase' && owner && f.length === CHASE_DISTANCES + 1) {
      owner.chase = f.slice(1).map(Number);
      continue;
    }
    const part = /^part (\S+) instructions (\d+) cond (\d+) (\d+) indirect (\d+) (\d+)$/.exec(line);
    if (part && threads.length) {
      streams = {};
      cur = null;
      const [instructions, cond, condMisses, indirect, indirectMisses] = part.slice(2).map(Number);
      owner = {
        instructions,
        branches: { cond, condMisses, indirect, indirectMisses },
        streams: streams as ReuseCounts['streams'],
      };
      parts.set(part[1], owner);
      continue;
    }
    if (f[0] === 'stream' && threads.length) {
      cur = { lo: Number(f[2]), hi: Number(f[3]), counts: [] };
      streams[f[1] as ReuseStream] = cur;
      continue;
    }
    const row = f.slice(1).map(Number);
    if (!cur || Number(f[0]) !== cur.lo + cur.counts.length || row.length !== REUSE_WAYS + 1)
      throw new TwinError(`twinreuse wrote an unreadable line: ${line.slice(0, 40)}`);
    cur.counts.push(row);
  }
  if (!threads.length) throw new TwinError('twinreuse wrote no thread');
  const whole = (what: string, c: ReuseCounts) => {
    for (const s of STREAMS)
      if (!c.streams[s] || c.streams[s].counts.length !== c.streams[s].hi - c.streams[s].lo + 1)
        throw new TwinError(`twinreuse wrote no complete stream ${s} for ${what}`);
  };
  for (const th of threads) whole(`thread ${th.id}`, th);
  for (const [name, c] of parts) whole(`part ${name}`, c);
  const all = threads.map((th) => th as ReuseCounts).reduce((a, b) => combineReuse(a, b));
  return {
    instructions: Number(insns[1]),
    branches: all.branches,
    streams: all.streams,
    threads,
    parts,
    code,
  };
}

/** a + f·b per object and instruction, each count clamped at zero (f = -1: a pair's difference,
 *  what the larger run's extra requests ran, start-up cancelled); objects left with nothing
 *  counted are left out. */
export function combineCode(a: InsnCounts, b: InsnCounts, f = 1): InsnCounts {
  const out: InsnCounts = new Map();
  const none = new Map<number, InsnCost>();
  const counts = (x: InsnCost | undefined) => (x ? [x.ir, x.bc, x.taken, x.execs] : [0, 0, 0, 0]);
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const [x, y] = [a.get(path) ?? none, b.get(path) ?? none];
    const into = new Map<number, InsnCost>();
    for (const addr of new Set([...x.keys(), ...y.keys()])) {
      const v = counts(y.get(addr));
      const [ir, bc, taken, execs] = counts(x.get(addr)).map((n, i) => Math.max(0, n + f * v[i]));
      if (ir > 0 || bc > 0 || taken > 0 || execs > 0) into.set(addr, { ir, bc, taken, execs });
    }
    if (into.size) out.set(path, into);
  }
  return out;
}

/** The counts of a run's threads that serve requests: those that read or write. A thread
 *  that never does is a background thread, whose work under Valgrind follows the clock (a
 *  timer's period, a sleep) and not the requests; its time on a real machine is measured
 *  apart (`schedstat`). A thread's whole count goes in, start-up included: the pair's
 *  difference cancels it. */
export function servingReuse(r: ReuseRun): ReuseCounts {
  const serving = r.threads.filter((t) => t.io > 0);
  return (serving.length ? serving : r.threads)
    .map((t): ReuseCounts => ({
      instructions: t.instructions,
      branches: t.branches,
      streams: t.streams,
      after: t.after ?? new Array<number>(SEND_MASKS).fill(0),
      ...(t.chase ? { chase: t.chase } : {}),
    }))
    .reduce((a, b) => combineReuse(a, b));
}

const STREAMS = ['I', 'D', 'U', 'UI', 'US'] as const;

/** The counts with each stream's rows mapped by `f` (row, stream, row index). */
function mapRows(a: ReuseCounts, f: (row: number[], s: ReuseStream, k: number) => number[]) {
  return Object.fromEntries(
    STREAMS.map((s) => [s, { ...a.streams[s], counts: a.streams[s].counts.map((row, k) => f(row, s, k)) }]),
  ) as ReuseCounts['streams'];
}

/** The branch counts mapped by `f` (count, name). */
function mapBranches(a: ReuseCounts, f: (x: number, k: keyof ReuseCounts['branches']) => number) {
  const b = a.branches;
  return {
    cond: f(b.cond, 'cond'),
    condMisses: f(b.condMisses, 'condMisses'),
    indirect: f(b.indirect, 'indirect'),
    indirectMisses: f(b.indirectMisses, 'indirectMisses'),
  };
}

/** a + f·b, bin by bin (f = -1: the difference of a pair's runs). */
export function combineReuse(a: ReuseCounts, b: ReuseCounts, f = 1): ReuseCounts {
  return {
    instructions: a.instructions + f * b.instructions,
    branches: mapBranches(a, (x, k) => x + f * b.branches[k]),
    streams: mapRows(a, (row, s, k) => row.map((c, p) => c + f * b.streams[s].counts[k][p])),
    ...(a.after || b.after
      ? { after: Array.from({ length: SEND_MASKS }, (_, m) => (a.after?.[m] ?? 0) + f * (b.after?.[m] ?? 0)) }
      : {}),
    // Chased loads where both have them (a run of the older tool has none to add).
    ...(a.chase && b.chase ? { chase: a.chase.map((x, d) => x + f * b.chase![d]) } : {}),
  };
}

/** The empty counts of streams shaped as `like`'s. */
export const emptyReuse = (like: ReuseCounts): ReuseCounts => combineReuse(like, like, -1);

/** Each part's counts in `a` + f·`b` (a part that ran in one only counts as nothing in the
 *  other). */
export function combineParts(
  a: Map<string, ReuseCounts>,
  b: Map<string, ReuseCounts>,
  f = 1,
): Map<string, ReuseCounts> {
  const out = new Map<string, ReuseCounts>();
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const [x, y] = [a.get(name), b.get(name)];
    out.set(name, combineReuse(x ?? emptyReuse(y!), y ?? emptyReuse(x!), f));
  }
  return out;
}

/** Every count divided by `n` (per request). */
export function scaleReuse(a: ReuseCounts, n: number): ReuseCounts {
  return {
    instructions: a.instructions / n,
    branches: mapBranches(a, (x) => x / n),
    streams: mapRows(a, (row) => row.map((c) => c / n)),
    ...(a.after ? { after: a.after.map((x) => x / n) } : {}),
    ...(a.chase ? { chase: a.chase.map((x) => x / n) } : {}),
  };
}

/** Misses of an LRU cache of `size` bytes, `assoc` ways and 64-byte lines on a stream: the
 *  accesses not found among the `assoc` most recent lines of their set. Null where the
 *  geometry lies outside what the tool followed (more than 16 ways, a set count out of range
 *  or not a power of two). */
export function reuseMisses(r: ReuseCounts, stream: ReuseStream, size: number, assoc: number): number | null {
  return tableMisses(r.streams[stream], size, assoc);
}

/** A platform's misses from the counts, as cachegrind reports them: its L1s on the code and
 *  data streams, its L2 and LLC on the unified one. */
export function platformMisses(r: ReuseCounts, p: Platform) {
  const at = (s: ReuseStream, c: Platform['I1']) => reuseMisses(r, s, c.size, c.assoc);
  return { I1: at('I', p.I1), D1: at('D', p.D1), L2: at('U', p.L2), LLC: at('U', p.LLC) };
}

/** The counts at one geometry in cachegrind's terms: instructions, each L1's misses, the last
 *  level's code and data misses, data accesses (all as reads), branches and mispredictions.
 *  Counts that are a pair's difference can come out below zero where both runs miss alike (a
 *  last level a server's code fits): as cachegrind's totals are, they are taken as zero. A
 *  geometry the tool did not follow is an error. */
export function reuseTotals(r: ReuseCounts, g: Geometry): CgTotals {
  const at = (s: ReuseStream, c: Geometry['I1']) => {
    const m = reuseMisses(r, s, c.size, c.assoc);
    if (m === null) throw new TwinError(`twinreuse follows no cache of ${c.size} bytes and ${c.assoc} ways`);
    return Math.max(0, m);
  };
  const codeLL = at('UI', g.LL);
  const d = r.streams.D;
  return {
    ...ZERO_TOTALS,
    Ir: r.instructions,
    I1mr: at('I', g.I1),
    D1mr: at('D', g.D1),
    ILmr: codeLL,
    DLmr: Math.max(0, at('U', g.LL) - codeLL),
    Dr: d.counts[0].reduce((a, c) => a + c, 0),
    Bc: r.branches.cond,
    Bcm: Math.max(0, r.branches.condMisses),
    Bi: r.branches.indirect,
    Bim: Math.max(0, r.branches.indirectMisses),
  };
}
