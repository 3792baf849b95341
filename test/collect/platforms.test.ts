import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPlatform, platformNames } from '../../src/collect/platforms.js';

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
    /no platform pentium: give a file or one of graviton2, haswell-ep, skylake-sp/,
  );
});
