import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pairAgrees, placementOffset, stackPlacement } from '../../src/collect/valgrind.js';
import { ZERO_TOTALS } from '../../src/collect/cachegrind.js';
import { KEY_POINTS, SWEEP } from '../../src/collect/sweep.js';

test("the key points a clone is scored on and trimmed at are the shipped platforms' L1s: 32 KiB 8-way (with haswell-ep's L2 behind) and 64 KiB 4-way", () => {
  const points = KEY_POINTS.map((k) => SWEEP[k]);
  assert.deepEqual(
    points.map((s) => [s.l1, s.l1Assoc ?? 8]),
    [
      [32 << 10, 8],
      [64 << 10, 4],
    ],
  );
  assert.deepEqual([points[0].ll, points[0].llAssoc], [256 << 10, 8]);
});

// Instructions of nginx's processes (master, two workers) in pairs of cachegrind runs of 2,000
// and 6,000 requests, one request at a time.
const run = (processIr: number[]) => ({
  processIr,
  totals: { ...ZERO_TOTALS, Ir: processIr.reduce((a, b) => a + b, 0) },
});

test('a pair agrees when as many processes served requests in both runs, whichever they were', () => {
  assert.ok(pairAgrees(run([7793734, 37010053, 8328882]), run([7793771, 8355551, 94290933])));
  assert.ok(pairAgrees(run([7793734, 37010053, 8328882]), run([7793771, 94290933, 8355551])));
  // Both workers served in both runs.
  assert.ok(pairAgrees(run([7794548, 19147622, 37000000]), run([7793802, 51252965, 59229086])));
  // One process only (memcached, redis).
  assert.ok(pairAgrees(run([30e6]), run([84e6])));
});

test('a pair disagrees when one run had a worker serve all the connections and the other two', () => {
  assert.ok(!pairAgrees(run([7793856, 37026620, 8329004]), run([7793802, 51252965, 51229086])));
  assert.ok(!pairAgrees(run([7794548, 19147622, 29711536]), run([7793802, 8329004, 94290933])));
});

// Where a process's stack begins (/proc/PID/stat's startstack), started as a Valgrind run
// starts a target: the placement's lines, then exec without address-space randomization.
const stackStart = (placement: { k: number; of: number }, extra: string) =>
  Number(
    execFileSync(
      'bash',
      ['-c', `${stackPlacement(placement)}\nexec setarch -R awk '{print $28}' /proc/self/stat`],
      { env: { ...process.env, TWIN_TEST_EXTRA: extra } },
    ).toString(),
  );

test("a target's stack begins where its placement says, whatever the environment Twin runs in", () => {
  for (const of of [1, 2, 3]) {
    const starts = Array.from({ length: of }, (_, k) => stackStart({ k, of }, ''));
    // Environments of other sizes (npm's variables, a shell's) move nothing; one of more than
    // the span, whole spans.
    for (const extra of ['x', 'y'.repeat(1100), 'z'.repeat(30000)])
      assert.deepEqual(
        Array.from({ length: of }, (_, k) => stackStart({ k, of }, extra)),
        starts,
      );
    const far = Array.from({ length: of }, (_, k) => stackStart({ k, of }, 'w'.repeat(70000)));
    far.forEach((s, k) => assert.equal((starts[k] - s) % 65536, 0));
    // Each placement is its offset further down.
    starts.forEach((s, k) => assert.equal(starts[0] - s, placementOffset(k, of)));
  }
  // Two placements: apart by half a 4 KiB L1 way, and by more than half a 64 KiB L2 way.
  assert.equal(placementOffset(1, 2) % 4096, 2048);
  assert.ok(placementOffset(1, 2) >= 32768);
});
