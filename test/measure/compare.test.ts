import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compare } from '../../src/measure/validate.js';
import { countersFrom, ZERO_TOTALS } from '../../src/profile/valgrind.js';
import type { Measurement } from '../../src/model/index.js';

/** A measurement of Valgrind counters only: one entry per platform, from LLC and L2 totals. */
function measured(target: string, pairs: [string, number, number][]): Measurement {
  // I1 misses: 10 per 1,000 instructions; branch mispredictions: one per 100 instructions
  // beyond 90,000 (a rate that moves with the count).
  const cpu = pairs.map(([platform, llcIr, l2Ir]) =>
    countersFrom({ ...ZERO_TOTALS, Ir: llcIr, I1mr: llcIr / 100, Bcm: (llcIr - 90000) / 100 }, 10, platform, { ...ZERO_TOTALS, Ir: l2Ir, Bcm: (l2Ir - 90000) / 100 }),
  );
  return { schemaVersion: 1, kind: 'twin-measurement', target, points: [], cpu, mix: null };
}

test('instructions per request and mispredictions are the medians of all of a side\'s Valgrind pairs, on every platform\'s row', () => {
  // The original's pairs spread (timed background work), the clone's do not.
  const o = measured('original', [['a', 96000, 100000], ['b', 104000, 101000], ['c', 99000, 120000]]);
  const c = measured('clone', [['a', 100000, 100000], ['b', 100000, 100000], ['c', 100000, 100000]]);
  const rows = compare('t', 'a,b,c', o, c).rows;
  const row = (m: string) => rows.find((r) => r.metric === m)!;
  // Samples 9600, 10000, 10400, 10100, 9900, 12000 per request: median 10050.
  for (const m of ['insns.per_req', 'sim.a.insns.per_req', 'sim.b.insns.per_req', 'sim.c.insns.per_req']) {
    assert.equal(row(m).original, 10050, m);
    assert.equal(row(m).clone, 10000, m);
  }
  // Mispredictions per 1,000: samples 0.625, 1, 1.346, 1.089, 0.909 and 2.5: median 1.045.
  const mpki = [96000, 100000, 104000, 101000, 99000, 120000].map((ir) => (1000 * (ir - 90000)) / 100 / ir).sort((a, b) => a - b);
  for (const p of ['a', 'b', 'c']) assert.ok(Math.abs(row(`sim.${p}.branch.mpki`).original! - (mpki[2] + mpki[3]) / 2) < 1e-12, p);
  // Cache misses per 1,000 instructions stay each platform's own: misses over its own pair's count.
  assert.equal(row('sim.b.I1.mpki').original, 10);
});
