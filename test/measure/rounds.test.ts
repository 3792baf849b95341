import { test } from 'node:test';
import assert from 'node:assert/strict';
import { medianBounds, medianDecided, mergeRounds, pairedRatio } from '../../src/measure/compare.js';
import type { LoadPoint } from '../../src/model/index.js';

/** A round at 500 requests/s: traced rounds carry system calls, untraced ones null. */
function round(
  cpuUsPerReq: number,
  p50: number,
  sent: number,
  syscalls: Record<string, number> | null,
): LoadPoint {
  return {
    targetRps: 500,
    throughputRps: 500,
    requests: sent,
    sent,
    errors: {},
    latency: { mean: p50, p50, p90: p50, p99: p50, p999: p50, max: p50 },
    cpuUsPerReq,
    netBytesPerReq: 100,
    syscallsPerReq: syscalls ? Object.values(syscalls).reduce((a, b) => a + b, 0) : null,
    syscallsByName: syscalls ?? {},
    threads: 3,
  };
}

test("timed figures are the untraced rounds' medians; system calls come from the traced rounds", () => {
  // The traced round is slower (the tracer's probes run on the target's CPU); it must not
  // move the CPU time or the latency.
  const m = mergeRounds([
    round(90, 200, 3000, { read: 2, write: 1 }),
    round(50, 80, 3000, null),
    round(54, 90, 3000, null),
    round(52, 70, 3000, null),
  ]);
  assert.equal(m.cpuUsPerReq, 52);
  // The kernel's part where every timed round has one; none where a round lacks it.
  assert.equal(m.cpuSysUsPerReq, undefined);
  const sys = [30, 20, 24, 22].map((cpuSysUsPerReq, i) => ({
    ...round([90, 50, 54, 52][i], 80, 3000, i ? null : { read: 2 }),
    cpuSysUsPerReq,
  }));
  assert.equal(mergeRounds(sys).cpuSysUsPerReq, 22);
  assert.equal(mergeRounds([sys[0], round(50, 80, 3000, null)]).cpuSysUsPerReq, undefined);
  assert.equal(m.latency.p50, 80);
  assert.equal(m.latency.max, 90);
  assert.equal(m.syscallsPerReq, 3);
  assert.deepEqual(m.syscallsByName, { read: 2, write: 1 });
  assert.equal(m.sent, 12000);
});

test('with every round traced, all rounds are timed and system calls are weighted by requests sent', () => {
  const m = mergeRounds([
    round(60, 100, 1000, { read: 2 }),
    round(40, 50, 3000, { read: 4, close: 1 }),
    round(50, 70, 2000, { read: 3 }),
  ]);
  assert.equal(m.cpuUsPerReq, 50);
  assert.equal(m.latency.p50, 70);
  // read: (2·1000 + 4·3000 + 3·2000) / 6000; close: 3000 / 6000.
  assert.equal(m.syscallsByName.read, 3.3333);
  assert.equal(m.syscallsByName.close, 0.5);
  assert.ok(Math.abs(m.syscallsPerReq! - (2 * 1000 + 5 * 3000 + 3 * 2000) / 6000) < 1e-12);
});

test("the paired CPU ratio is the median of the clone's over the original's, round by round, over the untraced rounds", () => {
  // The machine moves both sides alike from round to round: the medians of each side say
  // the clone is 8% cheaper (58 against 63), the rounds that it costs the same but once.
  const o = [
    round(90, 100, 1000, { read: 1 }),
    round(48, 80, 1000, null),
    round(84, 80, 1000, null),
    round(60, 80, 1000, null),
    round(66, 80, 1000, null),
  ];
  const c = [
    round(95, 100, 1000, { read: 1 }),
    round(50, 80, 1000, null),
    round(84, 80, 1000, null),
    round(45, 80, 1000, null),
    round(66, 80, 1000, null),
  ];
  assert.equal(pairedRatio(o, c), 1);
  assert.equal(mergeRounds(o).cpuUsPerReq, 63);
  assert.equal(mergeRounds(c).cpuUsPerReq, 58);
  // All rounds traced: all count.
  assert.equal(
    pairedRatio([round(40, 1, 1, {}), round(50, 1, 1, {})], [round(44, 1, 1, {}), round(60, 1, 1, {})]),
    1.15,
  );
  assert.equal(pairedRatio([], []), null);
});

test("the median's bounds follow from the values measured, the rest anywhere; a decided median keeps its side", () => {
  // Eight values, five known: the median lies between the mean of the first two known and
  // the mean of the last two.
  const [lo5, hi5] = medianBounds([1.0, 0.9, 1.1, 0.95, 1.05], 8);
  assert.ok(Math.abs(lo5 - 0.925) < 1e-12 && Math.abs(hi5 - 1.075) < 1e-12, `${lo5} ${hi5}`);
  // Four known of eight: three below them all would leave the median unbounded below.
  assert.equal(medianBounds([1, 1, 1, 1], 8)[0], -Infinity);
  assert.deepEqual(medianBounds([3, 1, 2], 3), [2, 2]);
  const band = [0.85, 1.15] as const;
  assert.ok(medianDecided([1.0, 0.9, 1.1, 0.95, 1.05], 8, band));
  assert.ok(!medianDecided([1.0, 0.7, 1.1, 0.95, 1.05], 8, band), '0.7 and 0.95 may yet be the middle');
  assert.ok(medianDecided([1.3, 1.25, 1.2, 1.4, 1.22], 8, band), 'above the band whatever comes');
  assert.ok(!medianDecided([1.0, 1.0, 1.0, 1.0], 8, band));
  // Property: wherever the rest fall, the median of all lies within the bounds.
  let seed = 7;
  const rnd = () => ((seed = (seed * 48271) % 2147483647) / 2147483647) * 0.6 + 0.7;
  for (let t = 0; t < 500; t++) {
    const all = Array.from({ length: 8 }, rnd);
    const known = all.slice(0, 5);
    const [lo, hi] = medianBounds(known, 8);
    const sorted = [...all].sort((a, b) => a - b);
    const med = (sorted[3] + sorted[4]) / 2;
    assert.ok(med >= lo - 1e-12 && med <= hi + 1e-12);
    if (medianDecided(known, 8, band)) assert.equal(med >= 0.85 && med <= 1.15, lo >= 0.85 && hi <= 1.15);
  }
});
