import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callHistory, nnls, splitReplay, type CallWindow } from '../../src/profile/history.js';

/** The requests (statements) of a profile's windows at PostgreSQL's loads: each load settles
 *  two windows of 2 s, is traced over 6 s (its second of warm-up with it) and run 8 s more
 *  untraced; `before` counts every request the target was sent ahead of the traced run. */
function schedule(): { sent: number; before: number }[] {
  let total = 0;
  return [700, 1120, 1540, 1960, 2380].map((rate) => {
    total += 4 * rate;
    const w = { sent: 6 * rate, before: total };
    total += 6 * rate + 8 * rate;
    return w;
  });
}

/** A cache of `pages` touched uniformly, filled to 1 - 1/e in `m` requests: its misses
 *  between `before` and `before + sent` requests. */
const misses = (pages: number, m: number, w: { sent: number; before: number }) =>
  pages * (Math.exp(-w.before / m) - Math.exp(-(w.before + w.sent) / m));

/** Windows of 8 connections each: `read` 30 calls a connection and 0.02 a request, `lseek`
 *  1.44 a request alone, `kill` 2 a window whatever its requests, `pread64` a cold cache's
 *  alone (2,100 pages filled to 1 - 1/e in 10,000 statements, as a fresh PostgreSQL cluster's
 *  shared buffers at scale 1). */
const windows = (jitter: number[]): CallWindow[] =>
  schedule().map((w, i) => ({
    ...w,
    counts: new Map([
      ['read', Math.round((30 * 8 + 0.02 * w.sent) * (1 + jitter[i]))],
      ['lseek', Math.round(1.44 * w.sent * (1 + jitter[i]))],
      ['kill', 2],
      ['pread64', Math.round(misses(2100, 10_000, w) * (1 + jitter[i]))],
    ]),
  }));

test("a call's part that comes with each connection is told from its part a request", () => {
  const exact = callHistory(windows([0, 0, 0, 0, 0]), 8);
  assert.deepEqual([...exact.keys()].sort(), ['kill', 'pread64', 'read']);
  assert.ok(Math.abs(exact.get('kill')!.perConn! - 0.25) < 1e-9);
  const read = exact.get('read')!;
  assert.ok(Math.abs(read.perConn! - 30) < 0.1 && Math.abs(read.perReq - 0.02) < 1e-4, JSON.stringify(read));
  assert.equal(read.cold, undefined);
  // With 2% of noise on each window's counts the parts hold within a fifth, and a call made a
  // request alone gets none.
  const noisy = callHistory(windows([0.02, -0.02, 0.01, -0.01, 0.02]), 8);
  assert.ok(!noisy.has('lseek'));
  assert.ok(Math.abs(noisy.get('read')!.perConn! - 30) < 6, JSON.stringify(noisy.get('read')));
  // Two windows cannot tell them apart.
  assert.equal(callHistory(windows([0, 0, 0, 0, 0]).slice(0, 2), 8).size, 0);
  // The replay keeps the rest as it was.
  const split = splitReplay(
    [
      { name: 'read', perReq: 0.06 },
      { name: 'lseek', perReq: 1.44 },
    ],
    exact,
  );
  assert.equal(split[0].perReq, 0.02);
  assert.ok(Math.abs(split[0].perConn! - 30) < 0.1);
  assert.deepEqual(split[1], { name: 'lseek', perReq: 1.44 });
});

test("a cache filling from a cold start is told by its misses' decay over the windows", () => {
  for (const jitter of [
    [0, 0, 0, 0, 0],
    [0.03, -0.03, 0.02, -0.02, 0.03],
  ]) {
    for (const connections of [8, 0]) {
      const p = callHistory(windows(jitter), connections).get('pread64')!;
      assert.ok(p.cold, JSON.stringify(p));
      assert.equal(p.perConn, undefined);
      // Its pages and fill within a tenth (the grid's steps are a factor 1.19 apart); no
      // steady part.
      assert.ok(Math.abs(p.cold.pages / 2100 - 1) < 0.1, JSON.stringify(p));
      assert.ok(Math.abs(p.cold.touches / (2100 / 10_000) - 1) < 0.2, JSON.stringify(p));
      assert.ok(p.perReq < 0.002, JSON.stringify(p));
    }
  }
  // Three windows: no cold part (four parameters).
  assert.equal(callHistory(windows([0, 0, 0, 0, 0]).slice(0, 3), 0).get('pread64')?.cold, undefined);
});

test('noise about a steady rate makes no cold part and no connection part', () => {
  // 500 draws of up to 5% of noise on each window's count of a call made 1.44 a request:
  // hardly any gets a cold part.
  let seed = 12345;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) + 0.5) / 2 ** 31;
  let found = 0;
  for (let k = 0; k < 500; k++) {
    const ws = schedule().map((w) => ({
      ...w,
      counts: new Map([['lseek', Math.round(1.44 * w.sent * (1 + 0.1 * (uniform() - 0.5)))]]),
    }));
    const parts = callHistory(ws, 0);
    if (parts.size) found++;
  }
  assert.ok(found <= 5, `${found} of 500 noisy steady calls got a cold part (0.6% expected)`);
});

test('non-negative least squares', () => {
  // y = 2 x1 + 3 x2 exactly; then a y that wants x2 negative gets it at 0.
  const x1 = [1, 2, 3, 4];
  const x2 = [1, 0, 1, 0];
  const fit = nnls([x1, x2], [5, 4, 9, 8]);
  assert.ok(Math.abs(fit.coef[0] - 2) < 1e-9 && Math.abs(fit.coef[1] - 3) < 1e-9 && fit.sse < 1e-12);
  const clipped = nnls([x1, x2], [0, 4, 2, 8]);
  assert.equal(clipped.coef[1], 0);
  assert.ok(Math.abs(clipped.coef[0] - 46 / 30) < 1e-9);
});
