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
    () => requireLinear(filling, 4000),
    (e: Error) =>
      e instanceof TwinError &&
      /did not settle under Valgrind: .* raise valgrindRequests above 2000/.test(e.message),
  );
  // A small count's change below 0.5 misses per 1,000 instructions is noise.
  assert.equal(halvesDiffer([half(3120, 110, 0.4), half(3120, 110, 0.1)], 4000), null);
});
