import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chainSegments } from '../../src/synth/layout.js';
import { emitBody } from '../../src/generate/body.js';
import { emitChain } from '../../src/generate/chain.js';
import { FILLER_BYTES, STATE_BYTES, hardMissRate, type BodyPlan } from '../../src/synth/body.js';
import { VG_TRANSLATION } from '../../src/collect/valgrind.js';
import { parseReuse, REUSE_LIB } from '../../src/collect/reuse.js';
import { parseCachegrind, type CgTotals } from '../../src/collect/cachegrind.js';
import { functionCosts, parseCallgrind, subtractRuns } from '../../src/collect/callgrind.js';
import { insnMix } from '../../src/collect/mix.js';
import { solveMix } from '../../src/synth/mix.js';
import { groupMissShare } from '../../src/synth/crowd.js';
import { INSN_CLASSES, type InsnMix } from '../../src/model/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'twin-body-'));

// Per request: 40 code blocks of a 128 KiB chain, 200 random branches, 100 loads of a ring of
// 128 KiB (past L1d, within L2), 30 of a ring of 4 MiB (past a 1 MiB L2, within the LLC) walked
// in runs of 16 lines.
const base: BodyPlan = {
  insnsPerReq: 0,
  rings: [
    { lines: 2048, loadsPerReq: 100 },
    { lines: 65536, loadsPerReq: 30 },
  ],
  ringRuns: [1, 16],
  ringRounds: 1,
  ringChains: 1,
  segments: [{ lines: 2048, loadsPerReq: 40 }],
  segmentRounds: [[0]],
  crowd: [],
  codeCrowd: [],
  conn: { lines: 0, loadsPerReq: 0 },
  blockUnits: { alu: 4, load: 2, store: 1, loadop: 1, cond: 1, callret: 1 },
  hardBranchesPerReq: 200,
  hardP: 0.5,
  mix: { units: { alu: 10, load: 4 }, itersPerReq: 5 },
  memBytes: STATE_BYTES + FILLER_BYTES,
  ops: [],
};

function build(plan: BodyPlan, name: string): string {
  const harness = `#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "twin.h"
#include "conn_mem.h"
${emitBody(plan, chainSegments(plan))}
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1;
    uint32_t op = argc > 2 ? (uint32_t)atoi(argv[2]) : 0;
    long conns = argc > 3 ? atol(argv[3]) : 0;
    uint64_t **conn = calloc(conns ? conns : 1, sizeof *conn);
    for (long c = 0; c < conns; c++)
        if (!conn || !(conn[c] = conn_body_mem(${plan.conn.lines || 1}u)))
            return 1;
    twin_body_ctx ctx = { 0 };
    if (posix_memalign((void **)&ctx.mem, 4096, ${plan.memBytes}u) != 0)
        return 1;
    memset(ctx.mem, 0, ${plan.memBytes}u);
    ctx.mem_bytes = ${plan.memBytes}u;
    ctx.rng = 88172645463325252ull;
    for (long i = 0; i < n; i++) {
        ctx.conn_mem = conns ? conn[i % conns] : NULL;
        clone_body(op, &ctx);
    }
    return (int)(ctx.sink & 1) * 0;
}
`;
  writeFileSync(join(tmp, `${name}.c`), harness);
  writeFileSync(join(tmp, `${name}-chain.c`), emitChain(chainSegments(plan), plan.blockUnits));
  const bin = join(tmp, name);
  execFileSync('gcc', [
    '-std=gnu11',
    '-O2',
    '-fno-toplevel-reorder',
    '-Wall',
    '-Wextra',
    '-Werror',
    `-I${join(ROOT, 'runtime')}`,
    '-pthread',
    '-o',
    bin,
    join(tmp, `${name}.c`),
    join(tmp, `${name}-chain.c`),
  ]);
  return bin;
}

/** Cachegrind totals of `n` bodies on Skylake-SP L1s, with the last level at `ll` bytes. */
function run(bin: string, n: number, ll: number, op = 0, conns = 0): CgTotals {
  const out = join(tmp, `cg.${bin.split('/').pop()}.${n}.${ll}.${op}.${conns}`);
  execFileSync('valgrind', [
    ...VG_TRANSLATION,
    '--tool=cachegrind',
    '--cache-sim=yes',
    '--branch-sim=yes',
    '--I1=32768,8,64',
    '--D1=32768,8,64',
    `--LL=${ll},16,64`,
    `--cachegrind-out-file=${out}`,
    '--log-file=/dev/null',
    bin,
    String(n),
    String(op),
    String(conns),
  ]);
  return parseCachegrind(readFileSync(out, 'utf8'));
}

/** Cachegrind events per body, by the difference of 200 and 600 bodies: set-up and the first
 *  walk through the rings cancel. */
function perBody(bin: string, ll: number, op = 0, conns = 0) {
  const a = run(bin, 200, ll, op, conns);
  const b = run(bin, 600, ll, op, conns);
  return (k: keyof CgTotals) => (b[k] - a[k]) / 400;
}

/** Callgrind events per body of each function, by the difference of 200 and 600 bodies (the
 *  Skylake-SP L1s, a 1 MiB last level): `per(fn, event)`. */
function perFunction(bin: string) {
  const runs = [200, 600].map((n) => {
    const out = join(tmp, `cf.${bin.split('/').pop()}.${n}`);
    execFileSync('valgrind', [
      ...VG_TRANSLATION,
      '--tool=callgrind',
      '--cache-sim=yes',
      '--branch-sim=yes',
      '--I1=32768,8,64',
      '--D1=32768,8,64',
      '--LL=1048576,16,64',
      `--callgrind-out-file=${out}`,
      '--log-file=/dev/null',
      bin,
      String(n),
    ]);
    return functionCosts(readFileSync(out, 'utf8'));
  });
  return (fn: string, e = 'I1mr') => {
    const k = runs[0].events.indexOf(e);
    return ((runs[1].functions.get(fn)?.[k] ?? 0) - (runs[0].functions.get(fn)?.[k] ?? 0)) / 400;
  };
}

const near = (got: number, want: number, what: string) =>
  assert.ok(Math.abs(got - want) <= 0.1 * want + 1, `${what}: ${got.toFixed(1)} per body, expected ${want}`);

test(
  'each part of the generated body costs the misses it is sized by, under cachegrind',
  { timeout: 120_000 },
  () => {
    const bin = build(base, 'parts');
    const l2 = perBody(bin, 1 << 20); // LL = a 1 MiB L2
    near(l2('I1mr'), base.segments[0].loadsPerReq, 'I1 misses (one per code block)');
    near(l2('Bcm') + l2('Bim'), base.hardBranchesPerReq / 2, 'mispredictions (half the random branches)');
    near(l2('D1mr'), base.rings[0].loadsPerReq + base.rings[1].loadsPerReq, 'D1 misses (every ring load)');
    near(l2('DLmr'), base.rings[1].loadsPerReq, 'L2 misses (loads of the ring past L2)');
    const llc = perBody(bin, 32 << 20); // LL = a 32 MiB LLC: both rings fit
    near(llc('DLmr'), 0, 'LLC misses (no ring past the LLC)');
  },
);

test(
  'rings walked by four cursors each keep their misses, and their loads wait on the one four back',
  { timeout: 120_000 },
  () => {
    // The rings of the first test, fractions of a load a body added, walked by four cursors.
    const plan: BodyPlan = {
      ...base,
      rings: [
        { lines: 2048, loadsPerReq: 100.5 },
        { lines: 65536, loadsPerReq: 30.25 },
      ],
      ringChains: 4,
    };
    const bin = build(plan, 'chains');
    const l2 = perBody(bin, 1 << 20);
    near(l2('D1mr'), 130.75, 'D1 misses (every ring load)');
    near(l2('DLmr'), 30.25, 'L2 misses (loads of the ring past L2)');
    // The chased loads of 200 and 600 bodies under twinreuse: the rings' at four loads back.
    const chased = [200, 600].map((n) => {
      const out = join(tmp, `chase.${n}`);
      execFileSync(
        'valgrind',
        ['--tool=twinreuse', `--out-file=${out}`, '--log-file=/dev/null', bin, String(n)],
        {
          env: { ...process.env, VALGRIND_LIB: REUSE_LIB },
        },
      );
      return parseReuse(readFileSync(out, 'utf8')).threads[0].chase!;
    });
    const per = chased[1].map((c, d) => (c - chased[0][d]) / 400);
    near(per[3], 130.75, 'loads chased four back');
    assert.ok(per[0] < 1, `${per[0]} loads a body chased one back`);
  },
);

test(
  "a connection's lines are reused once the other connections have sent: their misses follow the connection count",
  { timeout: 120_000 },
  () => {
    // Eight lines a connection, each request on the next connection, no rings: on 4
    // connections their 32 lines stay in a 32 KiB L1d; on 256 (2,048 lines, 128 KiB) each
    // request finds its connection's lines evicted.
    const bin = build({ ...base, rings: [], ringRuns: [], conn: { lines: 8, loadsPerReq: 8.3 } }, 'conn');
    const few = perBody(bin, 32 << 20, 0, 4);
    const many = perBody(bin, 32 << 20, 0, 256);
    near(few('D1mr'), 0, 'D1 misses on 4 connections');
    near(many('D1mr') - few('D1mr'), 8.3, 'D1 misses more on 256 connections (one a load)');
    // Walked as a ring is, in a fixed count of loads: no loop exit to mispredict.
    const none = perBody(bin, 32 << 20, 0, 0);
    const miss = (f: (k: keyof CgTotals) => number) => f('Bcm') + f('Bim');
    assert.ok(miss(many) - miss(none) < 0.2, `mispredictions with the part: ${miss(many) - miss(none)} more`);
  },
);

test(
  "a request type's multiples scale each part's misses and the mix loop's instructions",
  { timeout: 120_000 },
  () => {
    // Type 0 runs half of every part, type 1 one and a half times: three times type 0's.
    const type = (op: string, m: number) => ({
      op,
      rings: [m, m],
      segments: [m],
      crowd: m,
      hard: m,
      insns: m,
      passes: m,
      mix: m,
    });
    const [half, more] = [type('get', 0.5), type('set', 1.5)];
    const plan = { ...base, ops: [half, more] };
    const bin = build(plan, 'ops');
    const [a, b] = [0, 1].map((op) => perBody(bin, 1 << 20, op));
    const ratio = (k: keyof CgTotals) => b(k) / Math.max(1e-9, a(k));
    const [loads, big] = [base.rings[0].loadsPerReq + base.rings[1].loadsPerReq, base.rings[1].loadsPerReq];
    for (const [m, at, t] of [
      [0.5, a, 'type 0'],
      [1.5, b, 'type 1'],
    ] as const) {
      near(at('D1mr'), m * loads, `${t} D1 misses (every ring load)`);
      near(at('DLmr'), m * big, `${t} L2 misses (loads of the ring past L2)`);
      near(at('I1mr'), m * base.segments[0].loadsPerReq, `${t} I1 misses (one per code block)`);
      near(at('Bcm') + at('Bim'), (m * base.hardBranchesPerReq) / 2, `${t} mispredictions`);
    }
    assert.ok(ratio('Ir') > 2.5 && ratio('Ir') < 3.2, `instructions: ${b('Ir')} and ${a('Ir')}`);
  },
);

test('a code segment holds its lines whatever its blocks a request', () => {
  // Cut into chunks of the blocks a request runs, 359 lines run 75.8 a request became 380.
  for (const loadsPerReq of [5.2, 69, 75.8, 400]) {
    const chain = emitChain([{ name: 'twin_code_0', lines: 359, loadsPerReq }]);
    assert.equal(chain.match(/\.Lb%=_\d+:/g)?.length, 359, `${loadsPerReq} blocks a request`);
  }
});

test('a per-function callgrind profile of the body says what each part costs', { timeout: 120_000 }, () => {
  const bin = build(base, 'parts');
  const per = perFunction(bin);
  near(per('twin_data_0', 'Dr'), 100, 'loads of the 128 KiB ring');
  near(per('twin_data_0', 'D1mr'), 100, 'D1 misses of the 128 KiB ring');
  near(per('twin_data_0', 'DLmr'), 0, 'L2 misses of the 128 KiB ring');
  near(per('twin_data_1', 'DLmr'), 30, 'L2 misses of the 4 MiB ring');
  // Callgrind counts blocks reached by a jump in the function that jumped (or, at a symbol's
  // start, in the symbol's): a segment's costs are its function's and its blocks' together.
  near(per('twin_code_0') + per('twin_code_0_blocks', 'I1mr'), 40, 'I1 misses of the code segment');
  near(per('twin_branch', 'Bcm'), 100, 'mispredictions of the random branches');
  near(per('twin_mix', 'D1mr'), 0, 'D1 misses of the mix loop');
});

test(
  'a segment walked a whole walk or more a request is walked whole: its blocks as planned, its entry and exit never mispredicted',
  { timeout: 120_000 },
  () => {
    // Two 64 KiB segments (past a 32 KiB L1i: each block a miss): 1,100 blocks a request of the
    // first, whole walks of its 1,024 lines (1.07 a request, carried); 100 of the second from
    // its cursor.
    const plan: BodyPlan = {
      ...base,
      rings: [],
      segments: [
        { lines: 1024, loadsPerReq: 1100 },
        { lines: 1024, loadsPerReq: 100 },
      ],
      segmentRounds: [[0], [0]],
      hardBranchesPerReq: 0,
    };
    const bin = build(plan, 'whole');
    // The whole walk counts nothing down: its blocks go on by jrcxz on a zero register.
    const [wholeText, cursorText] = emitChain(chainSegments(plan), plan.blockUnits)
      .split('void twin_code_1(')
      .slice(1);
    assert.ok(!/subq \$1, %\[k\]/.test(wholeText) && /jrcxz/.test(wholeText), 'the whole walk counts down');
    assert.ok(
      /subq \$1, %\[k\]/.test(cursorText) && !/jrcxz/.test(cursorText),
      'the walk from a cursor counts nothing',
    );
    const per = perFunction(bin);
    const seg = (i: number, e: string) => per(`twin_code_${i}`, e) + per(`twin_code_${i}_blocks`, e);
    near(seg(0, 'I1mr'), 1100, 'I1 misses of the segment walked whole');
    near(seg(1, 'I1mr'), 100, 'I1 misses of the segment walked from its cursor');
    const whole = seg(0, 'Bcm') + seg(0, 'Bim');
    const cursor = seg(1, 'Bcm') + seg(1, 'Bim');
    assert.ok(whole < 0.3, `the whole walks mispredicted ${whole.toFixed(2)} times a body`);
    assert.ok(cursor >= 1, `the walk from its cursor mispredicted ${cursor.toFixed(2)} times a body`);
  },
);

test(
  'random branches taken with probability p mispredict as a 2-bit counter on random bits does, under cachegrind',
  { timeout: 120_000 },
  () => {
    for (const p of [0.5, 0.2, 0.1]) {
      const plan: BodyPlan = {
        ...base,
        rings: [],
        segments: [],
        mix: { units: {}, itersPerReq: 0 },
        hardBranchesPerReq: 1000,
        hardP: p,
      };
      const c = perBody(build(plan, `hard${p * 100}`), 1 << 20);
      // Beside the random branches, each body's loops exit once or twice: a misprediction each.
      const rate = (c('Bcm') - 2) / plan.hardBranchesPerReq;
      assert.ok(
        Math.abs(rate - hardMissRate(p)) <= 0.01,
        `p = ${p}: ${rate.toFixed(3)} mispredictions per branch, formula ${hardMissRate(p).toFixed(3)}`,
      );
      // And about min(p, 1 - p), the floor for any predictor.
      assert.ok(
        rate >= Math.min(p, 1 - p) - 0.01 && rate <= Math.min(p, 1 - p) * 1.25,
        `p = ${p}: ${rate.toFixed(3)}`,
      );
    }
  },
);

test(
  'the mix loop gives a body the instruction mix it is solved for (callgrind and the disassembly)',
  { timeout: 120_000 },
  () => {
    // A server-like mix, memcached's as measured, every class the loop supplies present.
    const shares: Record<string, number> = {
      alu: 0.413,
      mul: 0.008,
      div: 0,
      fp: 0.004,
      load: 0.168,
      store: 0.09,
      loadop: 0.071,
      cond: 0.146,
      jump: 0.026,
      indirect: 0.002,
      callret: 0.053,
      string: 0.017,
      other: 0.002,
    };
    const target = {
      shares,
      memShares: shares,
      insnsPerReq: 5000,
      bbSizes: [],
      takenRates: [],
      rawDistances: [],
      unknownShare: 0,
    } as unknown as InsnMix;
    const mix = solveMix(target, 5000, null, 0, {}, 5000);
    const plan: BodyPlan = { ...base, rings: [], segments: [], hardBranchesPerReq: 0, mix };
    const bin = build(plan, 'mixloop');
    const runs = [200, 600].map((n) => {
      const out = join(tmp, `cl.mixloop.${n}`);
      execFileSync('valgrind', [
        ...VG_TRANSLATION,
        '--tool=callgrind',
        '--dump-instr=yes',
        '--collect-jumps=yes',
        `--callgrind-out-file=${out}`,
        '--log-file=/dev/null',
        bin,
        String(n),
      ]);
      return parseCallgrind(readFileSync(out, 'utf8'));
    });
    const got = insnMix(subtractRuns(runs[1], runs[0]), 400);
    // The C around the loop (calls, accumulators) is a few percent of the instructions.
    assert.ok(
      Math.abs(got.insnsPerReq - 5000) / 5000 < 0.05,
      `${got.insnsPerReq} instructions per body, solved for 5000`,
    );
    for (const c of INSN_CLASSES) {
      const err = Math.abs(got.shares[c] - shares[c]);
      assert.ok(
        err <= 0.01,
        `${c}: ${(got.shares[c] * 100).toFixed(2)}% of instructions, target ${(shares[c] * 100).toFixed(2)}%`,
      );
    }
  },
);

test(
  'crowd groups miss the caches of few ways their model says, the conflict segment a 4-way L1 on every use, and neither an 8-way one',
  { timeout: 120_000 },
  () => {
    const crowd = [
      { lines: 5, stride: 16384, loadsPerReq: 30 },
      { lines: 3, stride: 131072, loadsPerReq: 20 },
    ];
    const plan: BodyPlan = {
      ...base,
      rings: [],
      segments: [],
      hardBranchesPerReq: 0,
      mix: { units: {}, itersPerReq: 0 },
      crowd,
      codeCrowd: crowd,
    };
    const bin = build(plan, 'conflict');
    const per = (assoc: number, size = 65536) => {
      const out = (n: number) => {
        const f = join(tmp, `cg.conflict.${size}.${assoc}.${n}`);
        execFileSync('valgrind', [
          ...VG_TRANSLATION,
          '--tool=cachegrind',
          '--cache-sim=yes',
          `--I1=${size},${assoc},64`,
          `--D1=${size},${assoc},64`,
          '--LL=33554432,16,64',
          `--cachegrind-out-file=${f}`,
          '--log-file=/dev/null',
          bin,
          String(n),
        ]);
        return parseCachegrind(readFileSync(f, 'utf8'));
      };
      const a = out(200);
      const b = out(600);
      return { d: (b.D1mr - a.D1mr) / 400, i: (b.I1mr - a.I1mr) / 400 };
    };
    const model = (size: number, assoc: number) =>
      crowd.reduce(
        (a, g) => a + g.loadsPerReq * groupMissShare(g.lines, g.stride, size / 64 / assoc, assoc),
        0,
      );
    // 64 KiB 4-way: the 5 lines 16 KiB apart share a set; 128 KiB 2-way: they spread over
    // four sets (two in one), and the 3 lines 128 KiB apart share one.
    assert.equal(model(65536, 4), 30);
    assert.equal(model(131072, 2), 20);
    near(per(4).d, 30, '4-way D1 misses');
    near(per(2, 131072).d, 20, '128 KiB 2-way D1 misses');
    near(per(8).d, 0, '8-way D1 misses');
    // The code groups, blocks at the same strides, miss the I1s alike.
    near(per(4).i, 30, '4-way I1 misses');
    near(per(2, 131072).i, 20, '128 KiB 2-way I1 misses');
    near(per(8).i, 0, '8-way I1 misses');
  },
);

test(
  "cachegrind and callgrind, as Twin runs them, count the code chain's instructions alike",
  { timeout: 120_000 },
  () => {
    // Several segments, one of them run as a cycle, with nginx's clone's operations per block
    // (a conditional branch in four blocks of five, some of them first in their block).
    const plan: BodyPlan = {
      ...base,
      rings: [],
      hardBranchesPerReq: 0,
      mix: { units: {}, itersPerReq: 0 },
      blockUnits: { alu: 2.59, load: 2.16, store: 1.5, loadop: 0.72, cond: 0.8, callret: 0.23 },
      segments: [
        { lines: 2048, loadsPerReq: 40 },
        { lines: 300, loadsPerReq: 150 },
        { lines: 64, loadsPerReq: 7 },
      ],
    };
    const bin = build(plan, 'chaincount');
    const ir = (tool: string, n: number) => {
      const out = join(tmp, `${tool}.chaincount.${n}`);
      execFileSync('valgrind', [
        ...VG_TRANSLATION,
        `--tool=${tool}`,
        `--${tool}-out-file=${out}`,
        '--log-file=/dev/null',
        bin,
        String(n),
      ]);
      return parseCachegrind(readFileSync(out, 'utf8')).Ir;
    };
    const per = (tool: string) => (ir(tool, 600) - ir(tool, 200)) / 400;
    const [cg, cl] = [per('cachegrind'), per('callgrind')];
    // Left to follow jumps in its translation (callgrind never does), cachegrind counted 2% more.
    assert.ok(
      Math.abs(cg - cl) <= 0.001 * cl,
      `${cg.toFixed(1)} instructions per body under cachegrind, ${cl.toFixed(1)} under callgrind`,
    );
  },
);
