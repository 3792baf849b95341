import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairAgrees } from '../../src/collect/valgrind.js';
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
