import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meanTotals, REPEATED_POINTS, SWEEP, ZERO_TOTALS } from '../../src/profile/valgrind.js';

test('the points measured twice are the shipped platforms\' L1s: 32 KiB 8-way (with haswell-ep\'s L2 behind) and 64 KiB 4-way', () => {
  const points = REPEATED_POINTS.map((k) => SWEEP[k]);
  assert.deepEqual(points.map((s) => [s.l1, s.l1Assoc ?? 8]), [[32 << 10, 8], [64 << 10, 4]]);
  assert.deepEqual([points[0].ll, points[0].llAssoc], [256 << 10, 8]);
});

test('two samples of a point are their mean, event by event', () => {
  const m = meanTotals([{ ...ZERO_TOTALS, Ir: 1000, I1mr: 30, D1mr: 7 }, { ...ZERO_TOTALS, Ir: 1100, I1mr: 34, D1mr: 8 }]);
  assert.deepEqual([m.Ir, m.I1mr, m.D1mr, m.Bcm], [1050, 32, 7.5, 0]);
});
