import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emitBody, emitChain } from '../../src/generate/body.js';
import { FILLER_BYTES, STATE_BYTES, hardMissRate, type BodyPlan } from '../../src/synth/body.js';
import { parseCachegrind, type CgTotals } from '../../src/profile/valgrind.js';
import { insnMix, parseCallgrind, subtractRuns } from '../../src/profile/callgrind.js';
import { KERNELS, KERNEL_CLASSES } from '../../src/synth/mix.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'twin-body-'));

// Per request: 40 code blocks of a 128 KiB chain, 200 random branches, 100 loads of a ring of
// 128 KiB (past L1d, within L2), 30 of a ring of 4 MiB (past a 1 MiB L2, within the LLC).
const base: BodyPlan = {
  insnsPerReq: 0,
  rings: [
    { lines: 2048, loadsPerReq: 100 },
    { lines: 65536, loadsPerReq: 30 },
  ],
  segments: [{ lines: 2048, loadsPerReq: 40 }],
  hardBranchesPerReq: 200,
  hardP: 0.5,
  kernels: { alu: 5, load: 5 },
  memBytes: STATE_BYTES + FILLER_BYTES,
};

function build(plan: BodyPlan, name: string): string {
  const harness = `#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "twin.h"
${emitBody(plan)}
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1;
    twin_body_ctx ctx = { 0 };
    if (posix_memalign((void **)&ctx.mem, 4096, ${plan.memBytes}u) != 0)
        return 1;
    memset(ctx.mem, 0, ${plan.memBytes}u);
    ctx.mem_bytes = ${plan.memBytes}u;
    ctx.rng = 88172645463325252ull;
    for (long i = 0; i < n; i++)
        clone_body(0, &ctx);
    return (int)(ctx.sink & 1) * 0;
}
`;
  writeFileSync(join(tmp, `${name}.c`), harness);
  writeFileSync(join(tmp, `${name}-chain.c`), emitChain(plan.segments));
  const bin = join(tmp, name);
  execFileSync('gcc', ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', `-I${join(ROOT, 'runtime')}`, '-pthread', '-o', bin, join(tmp, `${name}.c`), join(tmp, `${name}-chain.c`)]);
  return bin;
}

/** Cachegrind totals of `n` bodies on Skylake-SP L1s, with the last level at `ll` bytes. */
function run(bin: string, n: number, ll: number): CgTotals {
  const out = join(tmp, `cg.${bin.split('/').pop()}.${n}.${ll}`);
  execFileSync('valgrind', ['--tool=cachegrind', '--cache-sim=yes', '--branch-sim=yes', '--I1=32768,8,64', '--D1=32768,8,64', `--LL=${ll},16,64`, `--cachegrind-out-file=${out}`, '--log-file=/dev/null', bin, String(n)]);
  return parseCachegrind(readFileSync(out, 'utf8'));
}

/** Cachegrind events per body, by the difference of 200 and 600 bodies: set-up and the first
 *  walk through the rings cancel. */
function perBody(bin: string, ll: number) {
  const a = run(bin, 200, ll);
  const b = run(bin, 600, ll);
  return (k: keyof CgTotals) => (b[k] - a[k]) / 400;
}

const near = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= 0.1 * want + 1, `${what}: ${got.toFixed(1)} per body, expected ${want}`);

test('each part of the generated body costs the misses it is sized by, under cachegrind', { timeout: 120_000 }, () => {
  const bin = build(base, 'parts');
  const l2 = perBody(bin, 1 << 20); // LL = a 1 MiB L2
  near(l2('I1mr'), base.segments[0].loadsPerReq, 'I1 misses (one per code block)');
  near(l2('Bcm') + l2('Bim'), base.hardBranchesPerReq / 2, 'mispredictions (half the random branches)');
  near(l2('D1mr'), base.rings[0].loadsPerReq + base.rings[1].loadsPerReq, 'D1 misses (every ring load)');
  near(l2('DLmr'), base.rings[1].loadsPerReq, 'L2 misses (loads of the ring past L2)');
  const llc = perBody(bin, 32 << 20); // LL = a 32 MiB LLC: both rings fit
  near(llc('DLmr'), 0, 'LLC misses (no ring past the LLC)');
});

test('random branches taken with probability p mispredict as a 2-bit counter on random bits does, under cachegrind', { timeout: 120_000 }, () => {
  for (const p of [0.5, 0.2, 0.1]) {
    const plan: BodyPlan = { ...base, rings: [], segments: [], kernels: {}, hardBranchesPerReq: 1000, hardP: p };
    const c = perBody(build(plan, `hard${p * 100}`), 1 << 20);
    // Beside the random branches, each body's loops exit once or twice: a misprediction each.
    const rate = (c('Bcm') - 2) / plan.hardBranchesPerReq;
    assert.ok(Math.abs(rate - hardMissRate(p)) <= 0.01, `p = ${p}: ${rate.toFixed(3)} mispredictions per branch, formula ${hardMissRate(p).toFixed(3)}`);
    // And about min(p, 1 - p), the floor for any predictor.
    assert.ok(rate >= Math.min(p, 1 - p) - 0.01 && rate <= Math.min(p, 1 - p) * 1.25, `p = ${p}: ${rate.toFixed(3)}`);
  }
});

test('the mix kernels execute the classes they are sized by (callgrind and the disassembly)', { timeout: 120_000 }, () => {
  const kernels = Object.fromEntries(KERNEL_CLASSES.map((k, i) => [k, 20 + 10 * i]));
  const plan: BodyPlan = { ...base, rings: [], segments: [], hardBranchesPerReq: 0, kernels };
  const bin = build(plan, 'kernels');
  const runs = [200, 600].map((n) => {
    const out = join(tmp, `cl.kernels.${n}`);
    execFileSync('valgrind', ['--tool=callgrind', '--dump-instr=yes', '--collect-jumps=yes', `--callgrind-out-file=${out}`, '--log-file=/dev/null', bin, String(n)]);
    return parseCallgrind(readFileSync(out, 'utf8'));
  });
  const mix = insnMix(subtractRuns(runs[1], runs[0]), 400);
  const want: Record<string, number> = {};
  for (const k of KERNEL_CLASSES) for (const [c, x] of Object.entries(KERNELS[k]!)) want[c] = (want[c] ?? 0) + x * kernels[k];
  const total = Object.values(want).reduce((a, b) => a + b, 0);
  // The C around the kernels (calls, the accumulators) is a few percent of the instructions.
  assert.ok(Math.abs(mix.insnsPerReq - total) / total < 0.06, `${mix.insnsPerReq} instructions per body, kernels ${total}`);
  for (const c of Object.keys(want)) {
    const got = mix.shares[c as keyof typeof mix.shares];
    assert.ok(Math.abs(got - want[c] / total) <= 0.015, `${c}: ${(got * 100).toFixed(1)}% of instructions, kernels ${((want[c] / total) * 100).toFixed(1)}%`);
  }
});
