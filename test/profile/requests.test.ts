import { test } from 'node:test';
import assert from 'node:assert/strict';
import { staticKeySizes, requestTypes, VARIED_KEYS } from '../../src/profile/index.js';
import { keyNumberAt, type LoadResult } from '../../src/collect/loadgen.js';
import { Workload, parseWith } from '../../src/model/index.js';

test('a key keeps its one size over runs; one that varied, or was never measured, has none', () => {
  assert.deepEqual(
    staticKeySizes([
      [100, 0, 300, 400],
      [100, 200, 301, 0],
    ]),
    null, // one varied key of four is past VARIED_KEYS
  );
  const many = Array.from({ length: 200 }, (_, k) => 1000 + k);
  const other = many.map((s, k) => (k === 7 ? s + 1 : k === 9 ? -1 : k % 3 ? s : 0));
  const out = staticKeySizes([many, other])!;
  assert.ok(2 <= VARIED_KEYS * 200, 'two varied keys of 200 are within the bound');
  assert.equal(out.length, 200);
  assert.equal(out[7], 0);
  assert.equal(out[9], 0);
  assert.equal(out[3], 1003);
  assert.equal(out[6], 1006, 'measured in one run only');
  assert.equal(staticKeySizes([[0, 0, 0]]), null);
});

test('request types keep sizes by key only where every run of twin-load measured them, and replies are not all one size', () => {
  const run = (
    keys?: number[],
    sizes: [number, number][] = [
      [200, 2],
      [300, 1],
    ],
  ): LoadResult => ({
    protocol: 'http',
    target_rps: 1,
    achieved_rps: 1,
    duration_s: 1,
    requests: 3,
    sent: 3,
    errors: {},
    latency_us: { mean: 1, p50: 1, p90: 1, p99: 1, p999: 1, max: 1 },
    bytes: { sent: 1, received: 1 },
    ops: [{ op: 'get', count: 3, req_bytes: 30, resp_bytes: 700, resp_sizes: sizes, key_sizes: keys }],
  });
  assert.deepEqual(requestTypes([run([200, 300]), run([0, 300])])[0].keySizes, [200, 300]);
  assert.equal(requestTypes([run([200, 300]), run()])[0].keySizes, undefined);
  // A fixed reply (one size for all) needs no table.
  assert.equal(requestTypes([run([8, 8], [[8, 3]])])[0].keySizes, undefined);
});

test("where the load writes a key's number: memcached's and RESP's last digits, an HTTP path's {key}", () => {
  const w = (protocol: string, paths: string[]) =>
    parseWith(
      Workload,
      {
        protocol,
        connections: 1,
        keys: 10,
        requests: paths.map((path) => ({ op: 'get', share: 1 / paths.length, ...(path ? { path } : {}) })),
        loads: [1],
      },
      'w',
    );
  // "key:000000000009": 16 characters, the number's one digit last.
  assert.equal(keyNumberAt(w('memcached', [''])), 15);
  assert.equal(
    keyNumberAt({ ...w('resp', ['']), keys: 100000, keySize: 8 }),
    4,
    'a number wider than the padding',
  );
  assert.equal(keyNumberAt(w('http', ['/site/{key}.html'])), 6);
  assert.equal(keyNumberAt(w('http', ['/index.html'])), null);
  assert.equal(keyNumberAt(w('http', ['/a/{key}', '/bb/{key}'])), null);
});
