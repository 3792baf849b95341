import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TwinError, type PortableCpu } from '../../src/model/index.js';
import { curveRise, requireSteadyCurves } from '../../src/profile/curves.js';

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
