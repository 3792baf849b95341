import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Platform, parseWith } from '../../src/model/index.js';
import { loadPlatform, platformNames, randomPlatform } from '../../src/collect/platforms.js';

test('the shipped platforms load, with power-of-two set counts', () => {
  assert.deepEqual(platformNames(), ['graviton2', 'haswell-ep', 'skylake-sp']);
  const h = loadPlatform('haswell-ep');
  assert.equal(h.L2.size, 262144);
  assert.equal(loadPlatform('graviton2').I1.assoc, 4);
});

test('a platform whose set count is not a power of two is refused, naming the cache', () => {
  const f = join(mkdtempSync(join(tmpdir(), 'twin-plat-')), 'odd.yaml');
  writeFileSync(
    f,
    `name: odd
I1: { size: 32768, assoc: 8, line: 64 }
D1: { size: 32768, assoc: 8, line: 64 }
L2: { size: 1310720, assoc: 16, line: 64 }
LLC: { size: 33554432, assoc: 16, line: 64 }
`,
  );
  assert.throws(() => loadPlatform(f), /power of two .* at L2$/);
  assert.throws(
    () => loadPlatform('pentium'),
    /no platform pentium: give a file, random:SEED:K or one of graviton2, haswell-ep, skylake-sp/,
  );
});

test('random geometries: within their ranges, valid for Valgrind, the same for a seed, another for the next', () => {
  const kib = 1024;
  for (let seed = 1; seed <= 40; seed++)
    for (let k = 0; k < 5; k++) {
      const p = parseWith(Platform, randomPlatform(seed, k), 'random platform');
      for (const l1 of [p.I1, p.D1]) {
        assert.ok(
          l1.size >= 16 * kib && l1.size <= 128 * kib && l1.assoc >= 2 && l1.assoc <= 16,
          JSON.stringify(l1),
        );
      }
      assert.ok(p.L2.size >= 256 * kib && p.L2.size <= 2048 * kib && p.L2.assoc >= 4 && p.L2.assoc <= 16);
      assert.ok(
        p.LLC.size >= 4096 * kib && p.LLC.size <= 65536 * kib && p.LLC.assoc >= 8 && p.LLC.assoc <= 16,
      );
    }
  assert.deepEqual(loadPlatform('random:7:2'), randomPlatform(7, 2));
  assert.notDeepEqual(randomPlatform(7, 2), randomPlatform(7, 3));
  assert.notDeepEqual(randomPlatform(7, 2), randomPlatform(8, 2));
  // Over many draws, associativities that are no power of two come up, and Valgrind takes them.
  const odd = Array.from({ length: 40 }, (_, k) => randomPlatform(3, k)).find((p) => p.D1.assoc % 2 === 1)!;
  const g = (c: { size: number; assoc: number; line: number }) => `${c.size},${c.assoc},${c.line}`;
  execFileSync('valgrind', [
    '--tool=cachegrind',
    '--cache-sim=yes',
    `--I1=${g(odd.I1)}`,
    `--D1=${g(odd.D1)}`,
    `--LL=${g(odd.LLC)}`,
    '--cachegrind-out-file=/dev/null',
    '--log-file=/dev/null',
    'true',
  ]);
});
