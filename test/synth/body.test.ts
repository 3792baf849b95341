import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emitBody, emitChain } from '../../src/generate/body.js';
import { CHAIN_BLOCKS, FILLER_BYTES, RING_LINES, STATE_BYTES, type BodyPlan } from '../../src/synth/body.js';
import { parseCachegrind, type CgTotals } from '../../src/profile/valgrind.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'twin-body-'));

// Per request: 40 code blocks, 200 random branches, 100 loads past L1d, 30 past L2.
const plan: BodyPlan = {
  insnsPerReq: 0,
  codeBlocksPerReq: 40,
  hardBranchesPerReq: 200,
  ringLoadsPerReq: { d1: 100, l2: 30, llc: 0 },
  fillerPerReq: 50,
  chainBlocks: CHAIN_BLOCKS,
  ringLines: { d1: RING_LINES.d1, l2: RING_LINES.l2, llc: 0 },
  memBytes: STATE_BYTES + FILLER_BYTES + 64 * (RING_LINES.d1 + RING_LINES.l2),
};

function build(): string {
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
  writeFileSync(join(tmp, 'harness.c'), harness);
  writeFileSync(join(tmp, 'chain.c'), emitChain(plan.chainBlocks));
  const bin = join(tmp, 'harness');
  execFileSync('gcc', ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', `-I${join(ROOT, 'runtime')}`, '-o', bin, join(tmp, 'harness.c'), join(tmp, 'chain.c')]);
  return bin;
}

/** Cachegrind totals of `n` bodies on Skylake-SP L1s, with the last level at `ll` bytes. */
function run(bin: string, n: number, ll: number): CgTotals {
  const out = join(tmp, `cg.${n}.${ll}`);
  execFileSync('valgrind', ['--tool=cachegrind', '--cache-sim=yes', '--branch-sim=yes', '--I1=32768,8,64', '--D1=32768,8,64', `--LL=${ll},16,64`, `--cachegrind-out-file=${out}`, '--log-file=/dev/null', bin, String(n)]);
  return parseCachegrind(readFileSync(out, 'utf8'));
}

test('each part of the generated body costs the misses it is sized by, under cachegrind', { timeout: 120_000 }, () => {
  const bin = build();
  // By difference of 200 and 600 bodies: set-up and the first walk through the rings cancel.
  const per = (ll: number) => {
    const a = run(bin, 200, ll);
    const b = run(bin, 600, ll);
    return (k: keyof CgTotals) => (b[k] - a[k]) / 400;
  };
  const l2 = per(1 << 20); // LL = a 1 MiB L2
  const near = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= 0.1 * want + 1, `${what}: ${got.toFixed(1)} per body, expected ${want}`);
  console.log(JSON.stringify(Object.fromEntries((['Ir', 'I1mr', 'D1mr', 'DLmr', 'Bcm', 'Bim'] as const).map((k) => [k, l2(k)]))));
  near(l2('I1mr'), plan.codeBlocksPerReq, 'I1 misses (one per code block)');
  near(l2('Bcm') + l2('Bim'), plan.hardBranchesPerReq / 2, 'mispredictions (half the random branches)');
  near(l2('D1mr'), plan.ringLoadsPerReq.d1 + plan.ringLoadsPerReq.l2, 'D1 misses (every ring load)');
  near(l2('DLmr'), plan.ringLoadsPerReq.l2, 'L2 misses (loads of the ring past L2)');
  const llc = per(32 << 20); // LL = a 32 MiB LLC: the L2 ring fits
  near(llc('DLmr'), 0, 'LLC misses (no ring past the LLC)');
});
