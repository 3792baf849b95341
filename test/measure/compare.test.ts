import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compare } from '../../src/measure/compare.js';
import { verdictOf } from '../../src/measure/verdict.js';
import { countersFrom, ZERO_TOTALS } from '../../src/collect/cachegrind.js';
import type { Measurement } from '../../src/model/index.js';

/** A measurement of Valgrind counters only: one entry per platform, from LLC and L2 totals. */
function measured(target: string, pairs: [string, number, number][]): Measurement {
  // I1 misses: 10 per 1,000 instructions; branch mispredictions: one per 100 instructions
  // beyond 90,000 (a rate that moves with the count).
  const cpu = pairs.map(([platform, llcIr, l2Ir]) =>
    countersFrom({ ...ZERO_TOTALS, Ir: llcIr, I1mr: llcIr / 100, Bcm: (llcIr - 90000) / 100 }, 10, platform, {
      ...ZERO_TOTALS,
      Ir: l2Ir,
      Bcm: (l2Ir - 90000) / 100,
    }),
  );
  return { schemaVersion: 1, kind: 'twin-measurement', target, points: [], cpu, mix: null };
}

test("instructions per request and mispredictions are the medians of all of a side's Valgrind pairs, on every platform's row", () => {
  // The original's pairs spread (timed background work), the clone's do not.
  const o = measured('original', [
    ['a', 96000, 100000],
    ['b', 104000, 101000],
    ['c', 99000, 120000],
  ]);
  const c = measured('clone', [
    ['a', 100000, 100000],
    ['b', 100000, 100000],
    ['c', 100000, 100000],
  ]);
  const rows = compare('t', 'a,b,c', o, c).rows;
  const row = (m: string) => rows.find((r) => r.metric === m)!;
  // Samples 9600, 10000, 10400, 10100, 9900, 12000 per request: median 10050.
  for (const m of ['insns.per_req', 'sim.a.insns.per_req', 'sim.b.insns.per_req', 'sim.c.insns.per_req']) {
    assert.equal(row(m).original, 10050, m);
    assert.equal(row(m).clone, 10000, m);
  }
  // Mispredictions per 1,000: samples 0.625, 1, 1.346, 1.089, 0.909 and 2.5: median 1.045.
  const mpki = [96000, 100000, 104000, 101000, 99000, 120000]
    .map((ir) => (1000 * (ir - 90000)) / 100 / ir)
    .sort((a, b) => a - b);
  for (const p of ['a', 'b', 'c'])
    assert.ok(Math.abs(row(`sim.${p}.branch.mpki`).original! - (mpki[2] + mpki[3]) / 2) < 1e-12, p);
  // Cache misses per 1,000 instructions stay each platform's own: misses over its own pair's count.
  assert.equal(row('sim.b.I1.mpki').original, 10);
});

test("a cache's misses per 1,000 are the median of every pair that simulated that cache, whichever platform it ran for", () => {
  const g = (size: number, assoc: number) => ({ size, assoc, line: 64 });
  const intel = { I1: g(32768, 8), D1: g(32768, 8) };
  const caches = {
    a: { ...intel, L2: g(1 << 20, 16), LLC: g(32 << 20, 16) },
    b: { ...intel, L2: g(256 << 10, 8), LLC: g(16 << 20, 16) },
    c: { I1: g(65536, 4), D1: g(65536, 4), L2: g(1 << 20, 8), LLC: g(32 << 20, 16) },
  };
  // Per pair (LLC, then L2): I1 misses per 1,000 instructions and LL misses.
  const side = (
    target: string,
    i1: Record<string, [number, number]>,
    ll: Record<string, [number, number]>,
  ): Measurement => ({
    schemaVersion: 1,
    kind: 'twin-measurement',
    target,
    points: [],
    mix: null,
    cpu: (['a', 'b', 'c'] as const).map((p) =>
      countersFrom(
        { ...ZERO_TOTALS, Ir: 100000, I1mr: i1[p][0] * 100, DLmr: ll[p][0] * 100 },
        10,
        p,
        { ...ZERO_TOTALS, Ir: 100000, I1mr: i1[p][1] * 100, DLmr: ll[p][1] * 100 },
        caches[p],
      ),
    ),
  });
  const o = side(
    'original',
    { a: [10, 11], b: [12, 20], c: [3, 5] },
    { a: [0.1, 1], b: [0.2, 4], c: [0.3, 2] },
  );
  const c = side('clone', { a: [10, 10], b: [10, 10], c: [4, 4] }, { a: [0.1, 1], b: [0.2, 4], c: [0.3, 2] });
  const row = (m: string) => compare('t', 'a,b,c', o, c).rows.find((r) => r.metric === m)!;
  // a and b share their L1s: four samples, 10, 11, 12, 20: median 11.5, on both rows.
  assert.equal(row('sim.a.I1.mpki').original, 11.5);
  assert.equal(row('sim.b.I1.mpki').original, 11.5);
  // c's L1s are its own: its two pairs, 3 and 5.
  assert.equal(row('sim.c.I1.mpki').original, 4);
  assert.equal(row('sim.c.I1.mpki').clone, 4);
  // a's and c's LLCs are the same cache: 0.1 and 0.3; b's LLC and every L2 are their own.
  assert.ok(
    Math.abs(row('sim.a.LLC.mpki').original! - 0.2) < 1e-12 &&
      Math.abs(row('sim.c.LLC.mpki').original! - 0.2) < 1e-12,
  );
  assert.ok(Math.abs(row('sim.b.LLC.mpki').original! - 0.2) < 1e-12);
  assert.equal(row('sim.a.L2.mpki').original, 1);
  assert.equal(row('sim.b.L2.mpki').original, 4);
  assert.equal(row('sim.c.L2.mpki').original, 2);
});

test("a cache's row carries the original's lowest and highest over its pairs' stack placements, where it has two or more", () => {
  const placed = (d1: number[]) => {
    const m = measured('original', [['a', 100000, 100000]]);
    m.cpu[0].placements = d1.map((D1Mpki) => ({ I1Mpki: 10, D1Mpki, L2Mpki: null, LLCMpki: 0 }));
    return m;
  };
  const rows = compare('t', 'a', placed([4.9, 1.2, 2.0, 3.1]), placed([2.5])).rows;
  const row = (m: string) => rows.find((r) => r.metric === m)!;
  assert.deepEqual(row('sim.a.D1.mpki').originalRange, [1.2, 4.9]);
  assert.deepEqual(row('sim.a.I1.mpki').originalRange, [10, 10]);
  // No L2 simulated in any pair: no range; nor where the clone alone has placements.
  assert.equal(row('sim.a.L2.mpki').originalRange, undefined);
  const one = compare('t', 'a', placed([2.0]), placed([4.9, 1.2])).rows;
  assert.equal(one.find((r) => r.metric === 'sim.a.D1.mpki')!.originalRange, undefined);
});

test("each system call the original makes at least 0.1 times a request gets a row; processes and the kernel's CPU time are counted", () => {
  const point = (byName: Record<string, number>, processes: number) => ({
    targetRps: 500,
    throughputRps: 500,
    requests: 5000,
    sent: 5000,
    errors: {},
    latency: { mean: 120, p50: 100, p90: 150, p99: 200, p999: 300, max: 400 },
    cpuUsPerReq: 50,
    cpuSysUsPerReq: 10 + 10 * processes,
    netBytesPerReq: 300,
    syscallsPerReq: Object.values(byName).reduce((a, b) => a + b, 0),
    syscallsByName: byName,
    threads: 3,
    processes,
  });
  const m = (target: string, byName: Record<string, number>, processes: number): Measurement => ({
    ...measured(target, []),
    points: [point(byName, processes)],
  });
  const rows = compare(
    't',
    'a',
    m('original', { read: 2, poll: 1, fcntl: 0.05 }, 9),
    m('clone', { read: 2, poll: 1.1, futex: 0.3 }, 8),
  ).rows;
  const names = rows.filter((r) => /^syscalls\..+\.per_req$/.test(r.metric)).map((r) => r.metric);
  // fcntl below 0.1 a request and futex, which the original does not make, have none.
  assert.deepEqual(names, ['syscalls.poll.per_req', 'syscalls.read.per_req']);
  assert.equal(rows.find((r) => r.metric === 'syscalls.poll.per_req')!.clone, 1.1);
  assert.deepEqual(
    rows.filter((r) => r.metric === 'processes.count').map((r) => [r.original, r.clone]),
    [[9, 8]],
  );
  assert.deepEqual(
    rows.filter((r) => r.metric === 'cpu.sys_us_per_req').map((r) => [r.original, r.clone]),
    [[100, 90]],
  );
});

test("both sides' serial load steps get a row where both were measured, shown and not judged", () => {
  const o = { ...measured('original', [['a', 100000, 100000]]), loadStepsPerReq: 170 };
  const c = { ...measured('clone', [['a', 100000, 100000]]), loadStepsPerReq: 340 };
  const comparison = compare('t', 'a', o, c);
  const row = comparison.rows.find((r) => r.metric === 'loads.serial_steps_per_req')!;
  assert.deepEqual([row.original, row.clone], [170, 340]);
  const v = verdictOf({ ...comparison, verdict: { holds: true, judged: 0, failing: [] } });
  assert.ok(!v.failing.some((f) => f.startsWith('loads.')), v.failing.join('; '));
  // A side measured by an older Twin has none: no row.
  const old = compare('t', 'a', measured('original', [['a', 100000, 100000]]), c);
  assert.ok(!old.rows.some((r) => r.metric === 'loads.serial_steps_per_req'));
});
