import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Comparison, ComparisonRow } from '../../src/model/index.js';
import { verdictOf } from '../../src/measure/verdict.js';
import { verdictLine } from '../../src/report/table.js';

const row = (metric: string, original: number, clone: number, load: number | null = null): ComparisonRow => ({
  metric,
  load,
  original,
  clone,
});

const comparison = (rows: ComparisonRow[]): Comparison => ({
  schemaVersion: 1,
  kind: 'twin-comparison',
  target: 't',
  platform: 'a,b',
  rows,
});

/** A comparison every figure of which is on target. */
const good = () => [
  row('cpu.paired_ratio', 1, 1.1, 500),
  row('net.bytes_per_req', 340, 342, 500),
  row('syscalls.per_req', 4.5, 4.6, 500),
  row('syscalls.read.per_req', 2, 2.05, 500),
  row('threads.count', 10, 10, 500),
  row('processes.count', 9, 9, 500),
  row('errors.count', 0, 0, 500),
  row('latency.p99_us', 800, 1600, 500),
  row('insns.per_req', 9000, 9200),
  row('mix.alu.share', 0.41, 0.425),
  row('sim.a.D1.mpki', 6, 6.3),
  row('sim.b.D1.mpki', 6, 5.8),
  row('sim.a.I1.mpki', 0.8, 0.88),
  row('sim.a.branch.mpki', 4.3, 4.4),
  row('sim.b.branch.mpki', 4.3, 4.4),
];

test('a comparison within every target holds; latency is not judged without a saturation point', () => {
  const v = verdictOf(comparison(good()));
  assert.deepEqual(v.failing, []);
  assert.equal(v.holds, true);
  // Every row above but latency, the D1 level's mean and worst, the branch figure once.
  assert.equal(v.judged, 13);
  assert.match(verdictLine(v), /^verdict: holds \(13 figures/);
});

test('each target misses on its own bound: paired ratio, bytes, threads, instructions, mix, a cache level', () => {
  const cases: [ComparisonRow, RegExp][] = [
    [row('cpu.paired_ratio', 1, 1.2, 500), /cpu\.paired_ratio@500 1\.20 \(0\.85-1\.15\)/],
    [row('net.bytes_per_req', 340, 344, 500), /net\.bytes_per_req@500 \+1\.2%/],
    [row('threads.count', 10, 8, 500), /threads\.count@500 8 vs 10/],
    [row('processes.count', 9, 17, 500), /processes\.count@500 17 vs 9/],
    [row('syscalls.read.per_req', 2, 2.2, 500), /syscalls\.read\.per_req@500 \+10\.0%/],
    [row('insns.per_req', 9000, 8600), /insns\.per_req -4\.4%/],
    [row('mix.fp.share', 0.004, 0.03), /mix\.fp\.share 2\.6 pp/],
    [row('sim.b.D1.mpki', 6, 6.7), /D1\.mpki worst \+11\.7%/],
    [row('sim.a.I1.mpki', 0.8, 0.95), /sim\.a\.I1\.mpki 0\.800->0\.950 \(±0\.1\)/],
  ];
  for (const [bad, why] of cases) {
    const rows = good().filter((r) => !(r.metric === bad.metric && r.load === bad.load));
    const v = verdictOf(comparison([...rows, bad]));
    assert.equal(v.holds, false, bad.metric);
    assert.ok(
      v.failing.some((f) => why.test(f)),
      v.failing.join('; '),
    );
    // Only the figure made to miss misses (a cache level's mean may go with its worst).
    assert.ok(
      v.failing.every((f) => f.includes(bad.metric.replace(/^sim\.[^.]+\./, ''))),
      v.failing.join('; '),
    );
    assert.match(verdictLine(v), /^verdict: misses \d of \d+ targets: /);
  }
});

test('a cache level misses on its mean over the platforms though no platform is past the worst bound', () => {
  const rows = good().map((r) => (r.metric.endsWith('D1.mpki') ? { ...r, clone: 6.5 } : r));
  const v = verdictOf(comparison(rows));
  assert.deepEqual(v.failing, ['D1.mpki mean +8.3% (±5%)']);
});

test('the verdict line stays within its width however many figures miss', () => {
  const failing = Array.from({ length: 40 }, (_, k) => `sim.platform${k}.L2.mpki worst +50.0% (±10%)`);
  const line = verdictLine({ holds: false, judged: 80, failing });
  assert.ok(line.length <= 120, line);
  assert.match(line, /and \d+ more in the comparison$/);
});
