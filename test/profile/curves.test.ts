import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TwinError, type PortableCpu } from '../../src/model/index.js';
import { curveRise, halvesDiffer, requireLinear, requireSteadyCurves } from '../../src/profile/curves.js';
import { ZERO_TOTALS } from '../../src/collect/cachegrind.js';

const fixture = (t: string): PortableCpu =>
  JSON.parse(
    readFileSync(fileURLToPath(new URL(`../../../test/fixtures/profile-${t}.json`, import.meta.url)), 'utf8'),
  ).body.original;

test("the shipped examples' curves keep the law: code misses at a last level count with the data's", () => {
  for (const t of ['memcached', 'redis', 'nginx']) assert.equal(curveRise(fixture(t)), null, t);
  // Apart, redis's code misses rise from its 128 KiB L1 to the 256 KiB level its data share.
  const redis = fixture('redis');
  const at = (b: number) => redis.codeCurve.find((p) => p.bytes === b)!.missesPerReq;
  assert.ok(at(256 << 10) > at(128 << 10));
});

test('a curve that rises with size is refused in one line naming where and what to do', () => {
  // A target still filling its data set: no misses at 16 KiB, 52.5 a request at 32 KiB.
  const c = structuredClone(fixture('memcached'));
  c.dataCurve = c.dataCurve.map((p) => (p.bytes === 16 << 10 ? { ...p, missesPerReq: 0 } : p));
  assert.match(curveRise(c) ?? '', /data misses rise from 0\.00 a request at 16 KiB to 54\.84 at 32 KiB/);
  assert.throws(
    () => requireSteadyCurves(c, 2000),
    (e: Error) =>
      e instanceof TwinError &&
      /did not settle under Valgrind: .* raise valgrindRequests above 2000/.test(e.message) &&
      !e.message.includes('\n'),
  );
  // A rise inside Valgrind's noise (a few stray misses where there are none) is no rise.
  const d = structuredClone(fixture('memcached'));
  d.dataCurve = d.dataCurve.map((p) => (p.bytes === 32 << 20 ? { ...p, missesPerReq: 0.2 } : p));
  assert.equal(curveRise(d), null);
});

test('a target whose measured requests do not cost alike is refused; one that does passes', () => {
  // Halves of 2,000 requests each, as memcached's serving threads' at 8 KiB: 3,120
  // instructions a request, 110 data misses, 25 code misses, 4 last-level misses a request.
  const half = (ir: number, d1: number, ll: number) => ({
    ...ZERO_TOTALS,
    Ir: ir * 2000,
    D1mr: d1 * 2000,
    I1mr: 25 * 2000,
    DLmr: ll * 2000,
  });
  const steady = [half(3126, 110, 4), half(3098, 104, 4.2)];
  assert.equal(halvesDiffer(steady, 4000), null);
  // The work a request still changing: the second half runs a fifth more instructions.
  assert.match(
    halvesDiffer([half(3120, 110, 4), half(3744, 110, 4)], 4000) ?? '',
    /instructions a request moved from 3120 to 3744/,
  );
  // An L1's misses are not judged: a half is the difference of two separate runs, and
  // memcached's moved from 189 to 150 a request at 8 KiB in steady runs.
  assert.equal(halvesDiffer([half(3120, 189, 4), half(3120, 150, 4)], 4000), null);
  // A data set still filling: the second half misses at the last level far less.
  const filling = [half(3120, 110, 40), half(3130, 108, 12)];
  assert.match(halvesDiffer(filling, 4000) ?? '', /last-level misses a request moved from 40\.0 to 12\.0/);
  assert.throws(
    () => requireLinear({ halves: filling, repeats: [], runs: 1 }, 4000),
    (e: Error) =>
      e instanceof TwinError &&
      /did not settle under Valgrind: .* raise valgrindRequests above 2000/.test(e.message),
  );
  // A small count's change below 0.5 misses per 1,000 instructions is noise.
  assert.equal(halvesDiffer([half(3120, 110, 0.4), half(3120, 110, 0.1)], 4000), null);
});

test("halves apart by no more than the runs' own noise pass; a drift past it is refused", () => {
  // redis-server's serving thread (one thread: requests and its timed cron) in two repeats of
  // runs of 2,000, 4,000 and 6,000 requests of examples/redis-structures (instructions).
  const runs = [
    [116_815_585, 132_987_593, 147_316_819],
    [116_531_014, 132_254_778, 147_522_664],
  ];
  const totals = (ir: number) => ({ ...ZERO_TOTALS, Ir: ir });
  const mean = (k: number) => (runs[0][k] + runs[1][k]) / 2;
  const repeats = [0, 1, 2].map((k) => totals(runs[0][k] - runs[1][k]));
  // The first repeat alone: its halves differ by 11% (16.2 and 14.3 million instructions).
  const first = [totals(runs[0][1] - runs[0][0]), totals(runs[0][2] - runs[0][1])];
  assert.match(halvesDiffer(first, 4000) ?? '', /instructions a request moved from 8086 to 7165/);
  // Within four of its runs' deviations (0.33 million a run) they pass, as do the means'.
  assert.equal(halvesDiffer(first, 4000, repeats, 1), null);
  const means = [totals(mean(1) - mean(0)), totals(mean(2) - mean(1))];
  assert.equal(halvesDiffer(means, 4000, repeats, 2), null);
  // Work a request that grows a fifth from half to half stands out of that noise.
  const drift = [totals(15_000_000), totals(18_000_000)];
  assert.match(halvesDiffer(drift, 4000, repeats, 2) ?? '', /moved from 7500 to 9000/);
});
