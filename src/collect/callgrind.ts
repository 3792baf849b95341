import { CODE_SETS, TwinError } from '../model/index.js';
import { combineCode } from './reuse.js';

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

/** Valgrind's own preloaded libraries run inside the target but are not its code. */
export const isToolObject = (path: string) => path.includes('/valgrind/');

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
      if (!events)
        throw new TwinError(
          'callgrind output has cost lines before its events: line: is this a callgrind.out file?',
        );
      if (instrAt < 0)
        throw new TwinError(
          'callgrind output has no instruction addresses: run callgrind with --dump-instr=yes',
        );
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
      if (!m)
        throw new TwinError(
          `callgrind output has a malformed line '${line.slice(0, 40)}': is the file cut short?`,
        );
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
  if (!events)
    throw new TwinError(
      'callgrind output has no events: line: is this a callgrind.out file, and was it written completely?',
    );
  if (instrAt < 0)
    throw new TwinError('callgrind output has no instruction addresses: run callgrind with --dump-instr=yes');
  if (irAt < 0)
    throw new TwinError(
      'callgrind output does not count Ir: run callgrind without --collect-atstart or event options that drop it',
    );
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
      for (let i = positions; i < tokens.length && i - positions < events.length; i++)
        current[i - positions] += Number(tokens[i]);
    } else if (line.startsWith('fn=')) {
      const m = /^\((\d+)\)\s*(.*)$/.exec(line.slice(3).trim());
      const name = m
        ? m[2]
          ? (names.set(m[1], m[2]), m[2])
          : (names.get(m[1]) ?? `(${m[1]})`)
        : line.slice(3).trim();
      if (!events)
        throw new TwinError(
          'callgrind output has functions before its events: line: is this a callgrind.out file?',
        );
      current = functions.get(name) ?? events.map(() => 0);
      functions.set(name, current);
    } else if (line.startsWith('cfn=')) {
      const m = /^\((\d+)\)\s*(.+)$/.exec(line.slice(4).trim());
      if (m) names.set(m[1], m[2]);
    } else if (line.startsWith('calls=')) skipNext = true;
    else if (line.startsWith('events:')) events = line.slice(7).trim().split(/\s+/);
    else if (line.startsWith('positions:')) positions = line.slice(10).trim().split(/\s+/).length;
  }
  if (!events)
    throw new TwinError(
      'callgrind output has no events: line: is this a callgrind.out file, and was it written completely?',
    );
  return { events, functions };
}

/** `large - small` per object and address, clamped at 0: what `large`'s extra requests cost,
 *  with the start-up both runs share cancelled. */
export function subtractRuns(large: CallgrindRun, small: CallgrindRun): CallgrindRun {
  const totals = Object.fromEntries(
    large.events.map((e) => [e, Math.max(0, (large.totals[e] ?? 0) - (small.totals[e] ?? 0))]),
  );
  return { events: [...large.events], totals, objects: combineCode(large.objects, small.objects, -1) };
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
