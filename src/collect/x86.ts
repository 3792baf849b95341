import type { InsnClass } from '../model/index.js';

/** One x86-64 instruction as the mix counts it. */
export interface X86Insn {
  cls: InsnClass;
  /** Touches data memory: a `disp(base,index,scale)` or `%seg:disp` operand (not for lea and
   *  nop, which only use the syntax), the stack (push, pop, call, ret, leave) or a string op. */
  mem: boolean;
  /** Registers read, by 64-bit base name (`rax`, `r8`, `v3` for xmm3/ymm3/zmm3, `st1`, `k2`). */
  reads: string[];
  /** Registers written, by the same names. */
  writes: string[];
  /** The instruction ends a basic block: a branch, call, return, or a trap into the kernel. */
  endsBlock: boolean;
}

/** A set of space-separated words. */
function words(...lines: string[]): Set<string> {
  return new Set(lines.join(' ').split(/\s+/).filter(Boolean));
}

/** Words objdump prints before the mnemonic. Segment overrides also show as `%fs:` in operands. */
export const X86_PREFIXES = words(
  'lock rep repz repe repnz repne bnd notrack data16 data32 addr32 cs ds es ss fs gs xacquire xrelease',
  'rex rex64 {vex} {vex3} {evex}',
);

const CC = [...words('o no b c nae ae nb nc e z ne nz be na a nbe s ns p pe np po l nge ge nl le ng g nle')];
const JCC = new Set([...CC.map((c) => `j${c}`), ...words('jcxz jecxz jrcxz loop loope loopz loopne loopnz')]);
const SETCC = new Set(CC.map((c) => `set${c}`));
const CMOVCC = new Set(CC.map((c) => `cmov${c}`));

/** Integer work by how it treats its last (destination) operand. */
const RMW2 = words(
  'add sub and or xor adc sbb shl sal shr sar rol ror rcl rcr shld shrd bts btr btc crc32 adcx adox',
);
const RMW1 = words('inc dec neg not bswap');
const COMPARE = words('cmp test bt');
/** Reads the sources, writes the destination without reading it. */
const PURE = words(
  'popcnt lzcnt tzcnt bsf bsr andn blsr blsi blsmsk bextr bzhi sarx shlx shrx rorx pdep pext',
);
const MUL = words('mul imul mulx');
const DIV = words('div idiv');
/** Implicit registers read and written, by mnemonic: `reads>writes` (comma-separated). */
const implicit = (table: string): Record<string, [string[], string[]]> =>
  Object.fromEntries(
    table.split(/\s+/).map((e) => {
      const [name, regs = '>'] = e.split(':');
      const [r, w] = regs.split('>').map((x) => (x ? x.split(',') : []));
      return [name, [r, w]];
    }),
  );
/** Flag and small implicit-register work counted as ALU. */
const IMPLICIT_ALU = implicit(
  'cltq:rax>rax cwtl:rax>rax cbtw:rax>rax cqto:rax>rdx cltd:rax>rdx cwtd:rax>rdx lahf:>rax sahf:rax> clc stc cmc cld std',
);
/** System, hint and fence instructions: class other; implicit registers read and written. */
const SYSTEM = implicit(
  [
    'nop endbr64 endbr32 pause lfence mfence sfence hlt ud2 int3 int xtest xend xabort xbegin',
    'syscall:rax,rdi,rsi,rdx,r10,r8,r9>rax,rcx,r11 sysenter:rax>rax cpuid:rax,rcx>rax,rbx,rcx,rdx',
    'rdtsc:>rax,rdx rdtscp:>rax,rcx,rdx rdpid xgetbv:rcx>rax,rdx rdpkru:rcx>rax,rdx wrpkru:rax,rcx,rdx>',
    'rdrand rdseed rdfsbase rdgsbase wrfsbase wrgsbase clflush clflushopt clwb',
    'prefetcht0 prefetcht1 prefetcht2 prefetchnta prefetchw fxsave fxrstor fxsave64 fxrstor64',
    'xsave:rax,rdx> xsavec:rax,rdx> xsaveopt:rax,rdx> xrstor:rax,rdx> xsave64:rax,rdx> xrstor64:rax,rdx>',
    'xsavec64:rax,rdx>',
  ].join(' '),
);
const BLOCK_ENDING_SYSTEM = words('syscall sysenter int int3 ud2 hlt');
/** Plain data moves: a memory source makes a load, a memory destination a store. */
const MOVE =
  /^v?(mov|movabs|movbe|movnti|movntq|movntdq|movntdqa|movntp[sd]|movdq[au]|movdq[au](8|16|32|64)|movdqa(32|64)|mov[au]p[sd]|movs[sd]|mov[qd]|mov[hl]p[sd]|movddup|movs[hl]dup|lddqu|movz[bw][wlq]|movs[bwl][wlq]|movsxd?|movzx|p?broadcast\w*|pbroadcast\w*|kmov[bwdq])$/;
/** x87 moves between memory and the stack registers. */
const X87_LOAD = /^(fld|fild)[sltq]*$|^fldt$/;
const X87_STORE = /^(fst|fstp|fist|fistp|fisttp)[sltq]*$|^fstpt$/;
const STRING = /^(movs|stos|cmps|scas|lods|ins|outs)[bwlqd]?$/;
const SIMD_OPERAND = /%(xmm|ymm|zmm|st\b|st\(|mm\d|k\d)/;
/** SSE compute that writes its destination without reading it (3-operand forms with an
 *  immediate, extractions into a general register, conversions to integers). */
const SSE_PURE =
  /^(pshuf[dlh]w?|pshufd|pextr[bwdq]|extractps|pmovmskb|movmskp[sd]|cvtt?s[sd]2si[lq]?|cvtt?p[sd]2dq|pcmp[ei]strm|aeskeygenassist)$/;
const SSE_COMPARE = /^(u?comis[sd]|ptest|kortest[bwdq]|ktest[bwdq])$/;
const ZEROING = /^(xor|sub|pxor|xorp[sd]|psub[bwdq]|pcmpgt[bwdq]|vpxor[dq]?|vxorp[sd]|vpsub[bwdq])$/;

const GPR: Record<string, string> = {};
for (const r of ['ax', 'bx', 'cx', 'dx']) {
  for (const n of [`r${r}`, `e${r}`, r, `${r[0]}l`, `${r[0]}h`]) GPR[n] = `r${r}`;
}
for (const r of ['si', 'di', 'bp', 'sp']) {
  for (const n of [`r${r}`, `e${r}`, r, `${r}l`]) GPR[n] = `r${r}`;
}
for (let i = 8; i <= 15; i++) {
  for (const n of [`r${i}`, `r${i}d`, `r${i}w`, `r${i}b`, `r${i}l`]) GPR[n] = `r${i}`;
}

/** The architectural register a `%name` stands for, or null for %rip, segments and the like. */
export function x86Register(name: string): string | null {
  const n = name.replace(/^%/, '');
  if (n in GPR) return GPR[n];
  let m = /^[xyz]mm(\d+)$/.exec(n);
  if (m) return `v${m[1]}`;
  if (n === 'st') return 'st0';
  m = /^st\((\d)\)$/.exec(n);
  if (m) return `st${m[1]}`;
  m = /^(mm|k)(\d)$/.exec(n);
  if (m) return `${m[1]}${m[2]}`;
  return null;
}

/** One operand: `$imm`, `%reg`, memory, or a direct branch target. `*` marks an indirect target. */
interface Operand {
  kind: 'imm' | 'reg' | 'mem' | 'target';
  /** The register, for kind reg. */
  reg: string | null;
  /** Registers of the address, for kind mem. */
  addr: string[];
  text: string;
}

function splitOperands(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start).trim();
  if (last) out.push(last);
  return out;
}

function parseOperand(raw: string, branch: boolean): Operand {
  const text = raw.replace(/^\*/, '');
  if (text.startsWith('$')) return { kind: 'imm', reg: null, addr: [], text };
  if (/^%[a-z0-9]+$|^%st\(\d\)$/.test(text)) return { kind: 'reg', reg: x86Register(text), addr: [], text };
  if (branch && !raw.startsWith('*') && /^(0x)?[0-9a-f]+$/.test(text))
    return { kind: 'target', reg: null, addr: [], text };
  const addr: string[] = [];
  const paren = /\(([^)]*)\)/.exec(text);
  if (paren) {
    for (const part of paren[1].split(',')) {
      const r = part.trim() ? x86Register(part.trim()) : null;
      if (r) addr.push(r);
    }
  }
  return { kind: 'mem', reg: null, addr, text };
}

function uniq(xs: (string | null)[]): string[] {
  return [...new Set(xs.filter((x): x is string => x !== null))];
}

/** The mnemonic without an AT&T size suffix, when the bare name is one the tables know. */
function bare(m: string, known: (s: string) => boolean): string {
  if (known(m)) return m;
  const s = m.slice(0, -1);
  return /[bwlq]$/.test(m) && known(s) ? s : m;
}

const isInteger = (s: string) =>
  RMW2.has(s) ||
  RMW1.has(s) ||
  COMPARE.has(s) ||
  PURE.has(s) ||
  MUL.has(s) ||
  DIV.has(s) ||
  s in IMPLICIT_ALU ||
  s in SYSTEM ||
  CMOVCC.has(s) ||
  SETCC.has(s) ||
  JCC.has(s) ||
  MOVE.test(s) ||
  STRING.test(s) ||
  [
    'lea',
    'push',
    'pop',
    'pushf',
    'popf',
    'call',
    'ret',
    'jmp',
    'xchg',
    'cmpxchg',
    'cmpxchg8b',
    'cmpxchg16b',
    'leave',
    'enter',
    'xlat',
  ].includes(s);

/**
 * Classifies one instruction of `objdump -d` (AT&T syntax). `mnemonic` and `operands` are the
 * instruction text split at the first blank; prefixes (lock, rep, notrack, cs...) may sit in
 * either. The register sets are approximate: the destination is the last operand; it is read
 * too by read-modify-write ops (add, shl, inc, cmov, two-operand imul, 2-operand SSE compute)
 * and by cmp/test/bt (which write nothing); xor/sub/pxor of a register with itself reads
 * nothing; push, pop, call and ret read and write rsp; mul, div and the sign extensions use
 * rax/rdx implicitly; string ops read and write rsi/rdi (and rcx with rep). Partial-register
 * merges, flags and x87 stack rotation are not modelled.
 */
export function classify(mnemonic: string, operands: string): X86Insn {
  const words = `${mnemonic} ${operands}`
    .replace(/\s+#.*$/, '')
    .replace(/<[^>]*>/g, '')
    .trim()
    .split(/\s+/);
  let lock = false;
  let rep = false;
  while (words.length > 1 && (X86_PREFIXES.has(words[0]) || /^rex(\.[wrxb]+)?$/i.test(words[0]))) {
    const p = words.shift()!;
    if (p === 'lock') lock = true;
    if (p.startsWith('rep')) rep = true;
  }
  // Branch hints print as `jne,pt` / `jne,pn`.
  const raw = (words.shift() ?? '').toLowerCase().replace(/,p[tn]$/, '');
  const opText = words.join(' ');
  const m = bare(raw, isInteger);
  const branch = JCC.has(m) || ['jmp', 'call', 'ljmp', 'lcall', 'xbegin'].includes(m);
  // AVX-512 decorations: `{%k1}` masks are read; `{z}`, `{1to8}`, `{sae}` carry no register.
  const masks = [...opText.matchAll(/\{%(k\d)\}/g)].map((x) => x[1]);
  const ops = splitOperands(opText.replace(/\{[^}]*\}/g, ''))
    .filter((o) => o !== '')
    .map((o) => parseOperand(o, branch));
  const dst = ops.length > 0 ? ops[ops.length - 1] : undefined;
  const srcs = ops.slice(0, -1);
  const addrRegs = ops.flatMap((o) => o.addr);
  const memSrc = srcs.some((o) => o.kind === 'mem');
  const memDst = dst?.kind === 'mem';
  const anyMem = memSrc || memDst;
  const srcRegs = srcs.map((o) => o.reg);
  const dstReg = dst?.kind === 'reg' ? dst.reg : null;
  const simd = SIMD_OPERAND.test(opText);
  const result = (
    cls: InsnClass,
    mem: boolean,
    reads: (string | null)[],
    writes: (string | null)[],
    endsBlock = false,
  ): X86Insn => ({
    cls: lock && mem && cls !== 'string' ? 'loadop' : cls,
    mem,
    reads: uniq([...reads, ...masks]),
    writes: uniq(writes),
    endsBlock,
  });
  // A computing instruction on memory is loadop; on registers, its own class.
  const compute = (cls: InsnClass, reads: (string | null)[], writes: (string | null)[]) =>
    result(anyMem ? 'loadop' : cls, anyMem, [...reads, ...addrRegs], writes);

  if (JCC.has(m)) {
    const c = m.startsWith('loop') || m.endsWith('cxz') ? ['rcx'] : [];
    return result('cond', false, c, m.startsWith('loop') ? c : [], true);
  }
  if (m === 'jmp' || m === 'ljmp') {
    const indirect = opText.trim().startsWith('*');
    return result(
      indirect ? 'indirect' : 'jump',
      anyMem,
      indirect ? [...srcRegs, dst?.reg ?? null, ...addrRegs] : [],
      [],
      true,
    );
  }
  if (m === 'call' || m === 'lcall')
    return result('callret', true, ['rsp', dst?.reg ?? null, ...addrRegs], ['rsp'], true);
  if (m === 'ret' || m === 'lret' || m === 'iret' || m === 'iretq')
    return result('callret', true, ['rsp'], ['rsp'], true);
  if (STRING.test(m) && (ops.length === 0 || /:\(%[re]?[sd]i\)/.test(opText))) {
    const regs = ops.flatMap((o) => (o.reg ? [o.reg] : o.addr));
    const ptrs = regs.filter((r) => r === 'rsi' || r === 'rdi');
    const counter = rep ? ['rcx'] : [];
    return result(
      'string',
      true,
      [...regs, ...counter],
      [...ptrs, ...counter, m.startsWith('lods') ? 'rax' : null],
    );
  }
  if (
    m === 'nop' ||
    (m === 'xchg' && ops.length === 2 && ops[0].text === ops[1].text && ops[0].kind === 'reg')
  ) {
    return result('other', false, [], []);
  }
  if (m in SYSTEM) {
    const [r, w] = SYSTEM[m];
    return result('other', anyMem, [...r, ...addrRegs], w, BLOCK_ENDING_SYSTEM.has(m));
  }
  if (m === 'lea') return result('alu', false, addrRegs, [dstReg]);
  if (m === 'push' || m === 'pushf')
    return result('store', true, ['rsp', ...ops.map((o) => o.reg), ...addrRegs], ['rsp']);
  if (m === 'pop' || m === 'popf') return result('load', true, ['rsp', ...addrRegs], ['rsp', dstReg]);
  if (m === 'leave') return result('load', true, ['rbp'], ['rsp', 'rbp']);
  if (m === 'enter') return result('store', true, ['rsp', 'rbp'], ['rsp', 'rbp']);
  if (m === 'xlat') return result('load', true, ['rbx', 'rax'], ['rax']);
  if (SETCC.has(m)) return result(memDst ? 'store' : 'alu', memDst, addrRegs, [dstReg]);
  if (CMOVCC.has(m)) return compute('alu', [...srcRegs, dstReg], [dstReg]);
  if (m === 'xchg' || m === 'xadd' || m.startsWith('cmpxchg')) {
    // Atomic when on memory (xchg always, the others with lock): loadop like any RMW on memory.
    const implicit = m.startsWith('cmpxchg') ? ['rax'] : [];
    const regs = ops.map((o) => o.reg);
    const writes = m === 'xchg' || m === 'xadd' ? regs : [dstReg, ...implicit];
    return compute('alu', [...regs, ...implicit], writes);
  }
  if (MUL.has(m)) {
    if (m === 'mulx')
      return compute('mul', [...srcRegs, 'rdx'], [dstReg, ops.length >= 2 ? ops[ops.length - 2].reg : null]);
    if (ops.length === 1) return compute('mul', [dst?.reg ?? null, 'rax'], ['rax', 'rdx']);
    if (ops.length === 3) return compute('mul', srcRegs, [dstReg]);
    return compute('mul', [...srcRegs, dstReg], [dstReg]);
  }
  if (DIV.has(m)) return compute('div', [dst?.reg ?? null, 'rax', 'rdx'], ['rax', 'rdx']);
  if (m in IMPLICIT_ALU) {
    const [r, w] = IMPLICIT_ALU[m];
    return result('alu', false, r, w);
  }
  if (X87_LOAD.test(m) && anyMem) return result('load', true, addrRegs, ['st0']);
  if (X87_STORE.test(m) && memDst) return result('store', true, ['st0', ...addrRegs], []);
  if (MOVE.test(m)) {
    if (memSrc && !memDst) return result('load', true, [...srcRegs, ...addrRegs], [dstReg]);
    if (memDst) return result('store', true, [...srcRegs, ...addrRegs], []);
    return result(simd ? 'fp' : 'alu', false, srcRegs, [dstReg]);
  }
  const zeroing =
    ops.length >= 2 && ops.every((o) => o.kind === 'reg' && o.text === ops[0].text) && ZEROING.test(m);
  if (zeroing)
    return result(
      m.startsWith('p') || m.startsWith('v') || m.endsWith('ps') || m.endsWith('pd') ? 'fp' : 'alu',
      false,
      [],
      [dstReg],
    );
  if (RMW2.has(m) || RMW1.has(m))
    return compute('alu', [...srcRegs, dst?.reg ?? null], memDst ? [] : [dstReg]);
  if (COMPARE.has(m))
    return compute(
      'alu',
      ops.map((o) => o.reg),
      [],
    );
  if (PURE.has(m)) return compute('alu', srcRegs, [dstReg]);
  if (
    raw.startsWith('f') ||
    simd ||
    (raw.startsWith('v') && raw.length > 4) ||
    /^(p|cvt|sqrt|rcp|rsqrt|add|sub|mul|div|min|max|and|or|xor|unpck|shuf|blend|round|comi|ucomi|ldmxcsr|stmxcsr|emms)/.test(
      raw,
    )
  ) {
    const sse = raw.replace(/^v/, '');
    if (SSE_COMPARE.test(sse))
      return compute(
        'fp',
        ops.map((o) => o.reg),
        [],
      );
    if (/^pcmp[ei]stri$/.test(sse))
      return compute('fp', [...ops.map((o) => o.reg), ...(sse[4] === 'e' ? ['rax', 'rdx'] : [])], ['rcx']);
    if (
      SSE_PURE.test(sse) ||
      (raw.startsWith('v') && ops.length >= 3 && !raw.startsWith('vfm') && !raw.startsWith('vfnm'))
    ) {
      return compute('fp', srcRegs, [dstReg]);
    }
    const writes = memDst || raw === 'ptest' ? [] : [dstReg];
    return compute('fp', [...srcRegs, dst?.reg ?? null], writes);
  }
  return result('other', anyMem, [...ops.map((o) => o.reg), ...addrRegs], []);
}
