import { test } from 'node:test';
import assert from 'node:assert/strict';
import { perConnection, splitReplay, type CallWindow } from '../../src/profile/connections.js';

/** Windows of 8 connections each at PostgreSQL's loads (5 s): `read` 30 calls a connection
 *  and 0.02 a request, `lseek` 1.44 a request alone, `kill` 2 a window whatever its requests. */
const windows = (jitter: number[]): CallWindow[] =>
  [3500, 5600, 7700, 9800, 11900].map((sent, i) => ({
    sent,
    counts: new Map([
      ['read', Math.round((30 * 8 + 0.02 * sent) * (1 + jitter[i]))],
      ['lseek', Math.round(1.44 * sent * (1 + jitter[i]))],
      ['kill', 2],
    ]),
  }));

test("a call's part that comes with each connection is told from its part a request", () => {
  const exact = perConnection(windows([0, 0, 0, 0, 0]), 8);
  assert.deepEqual([...exact.keys()], ['read', 'kill']);
  assert.equal(exact.get('kill')!.perConn, 0.25);
  const read = exact.get('read')!;
  assert.ok(Math.abs(read.perConn - 30) < 0.1 && Math.abs(read.perReq - 0.02) < 1e-4, JSON.stringify(read));
  // With 2% of noise on each window's counts the parts hold within a fifth, and a call made a
  // request alone gets none.
  const noisy = perConnection(windows([0.02, -0.02, 0.01, -0.01, 0.02]), 8);
  assert.ok(!noisy.has('lseek'));
  assert.ok(Math.abs(noisy.get('read')!.perConn - 30) < 6, JSON.stringify(noisy.get('read')));
  // Two windows cannot tell them apart; nor windows of one size.
  assert.equal(perConnection(windows([0, 0, 0, 0, 0]).slice(0, 2), 8).size, 0);
  const same = windows([0, 0, 0, 0, 0]).map((w) => ({ ...w, sent: 5000 }));
  assert.equal(perConnection(same, 8).size, 0);
  // The replay keeps the rest as it was.
  const split = splitReplay(
    [
      { name: 'read', perReq: 0.06 },
      { name: 'lseek', perReq: 1.44 },
    ],
    exact,
  );
  assert.deepEqual(split, [
    { name: 'read', perReq: 0.02, perConn: 30 },
    { name: 'lseek', perReq: 1.44 },
  ]);
});
