import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decided, keepsUp, serves, searchSaturation } from '../../src/measure/saturation.js';
import { verdictOf } from '../../src/measure/verdict.js';
import type { ComparisonRow, SaturationProbe } from '../../src/model/index.js';

const upTo = (limit: number) => {
  const asked: number[] = [];
  return { asked, served: async (rate: number) => (asked.push(rate), rate <= limit) };
};

test('the saturation search brackets the limit by doubling or halving, then bisects it', async () => {
  // From below: 2,000, 4,000 served, 8,000 not; then 6,000, 5,000, 4,500 and 4,250.
  const a = upTo(4600);
  assert.equal(await searchSaturation(2000, a.served), 4500);
  assert.deepEqual(a.asked, [2000, 4000, 8000, 6000, 5000, 4500, 4750]);
  // From above: halved to a served rate first.
  const b = upTo(700);
  const rps = await searchSaturation(2000, b.served);
  assert.ok(rps <= 700 && rps >= 700 * (1 - 1 / 16), `${rps}`);
  // Every rate served up to 2^8 times the start, or none down to a 256th of it.
  assert.equal(await searchSaturation(100, upTo(Infinity).served), 25600);
  assert.equal(await searchSaturation(100, upTo(0).served), 0);
});

test('a rate is decided by most of three probes: two alike, else a third', () => {
  const p = (p99Us: number, keptUp = true): SaturationProbe => ({
    rate: 1000,
    achievedRps: 1000,
    p99Us,
    keptUp,
  });
  // Undecided with no probe, one, or two that disagree.
  assert.equal(decided([], 10000), null);
  assert.equal(decided([p(4000)], 10000), null);
  assert.equal(decided([p(4000), p(30000)], 10000), null);
  // Two alike decide; a third decides two that differ.
  assert.equal(decided([p(4000), p(9000)], 10000), true);
  assert.equal(decided([p(12000), p(30000)], 10000), false);
  assert.equal(decided([p(758), p(30015), p(3064)], 10000), true);
  assert.equal(decided([p(12386), p(29491), p(7897)], 10000), false);
  // A probe that fell behind the rate or failed requests does not serve, whatever its p99.
  assert.ok(serves(p(9000), 10000) && !serves(p(9000, false), 10000) && !serves(p(10500), 10000));
  assert.equal(decided([p(9000, false), p(9000, false)], 10000), false);
  assert.equal(decided([p(9000, false), p(9000), p(9000)], 10000), true);
  // Keeping up: 95% of the rate, less where the arrivals are few enough to fall short by chance
  // (1,020 pgbench transactions: 9.4%); never more than 95%.
  assert.equal(keepsUp(1e6), 0.95);
  assert.ok(Math.abs(keepsUp(1020) - 0.906) < 0.001);
  assert.ok(keepsUp(1) < 0.95 && keepsUp(0) <= keepsUp(1));
});

test('latency is judged up to 80% of the original saturation throughput, which is judged within 10%', () => {
  const rows = (sat: [number, number], p99At: number): ComparisonRow[] => [
    { metric: 'saturation_rps', load: null, original: sat[0], clone: sat[1] },
    { metric: 'latency.p50_us', load: 1000, original: 100, clone: 105 },
    { metric: 'latency.p99_us', load: 1000, original: 400, clone: 400 * p99At },
    { metric: 'latency.p99_us', load: 9000, original: 4000, clone: 20000 },
  ];
  const v = (sat: [number, number], p99At: number) =>
    verdictOf({
      schemaVersion: 1,
      kind: 'twin-comparison',
      target: 't',
      platform: 'a',
      rows: rows(sat, p99At),
    });
  // 9,000 is past 80% of 10,000: its p99 five times the original's is not judged.
  assert.deepEqual(v([10000, 9500], 1.15).failing, []);
  assert.deepEqual(v([10000, 8500], 1.15).failing, ['saturation_rps -15.0% (±10%)']);
  assert.deepEqual(v([10000, 9500], 1.3).failing, ['latency.p99_us@1000 +30.0% (±20%)']);
  // Without the saturation row, latency is not judged.
  const none = verdictOf({
    schemaVersion: 1,
    kind: 'twin-comparison',
    target: 't',
    platform: 'a',
    rows: rows([10000, 9500], 3).slice(1),
  });
  assert.deepEqual(none.failing, []);
});
