import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Place } from '../../src/collect/bpftrace.js';
import {
  fitLocks,
  waitOf,
  MIN_WAITS,
  typeReplay,
  withoutLatchCalls,
  type PlaceWindow,
} from '../../src/profile/places.js';
import type { RequestType } from '../../src/model/index.js';

const typed = (ops: string[]): RequestType[] =>
  ops.map((op) => ({ op, share: 0, requestBytesMean: 0, responseSizes: [[1, 1]] }));
const KINDS = ['begin', 'update', 'update', 'end'];

/** A window of `tps` transactions a second for `s` seconds whose second update waits as a lock
 *  of `ways` ways held `holdUs` would make it: with probability tps * hold / ways. */
function window(tps: number, s: number, ways: number, holdUs: number): PlaceWindow {
  const n = tps * s;
  const quiet: Place = { requests: n, waited: 0, waitNs: 0, holds: n, holdNs: n * 3000, calls: new Map() };
  const waited = Math.round((n * tps * holdUs) / 1e6 / ways);
  return {
    rps: tps * KINDS.length,
    windowS: s,
    sent: n * KINDS.length,
    places: [quiet, quiet, { ...quiet, waited, waitNs: waited * 400_000, holdNs: n * holdUs * 1000 }, quiet],
  };
}

test('a lock of any number of ways is found from its waits at the traced loads', () => {
  for (const ways of [1, 3, 10, 40])
    for (const holdUs of [600, 1500]) {
      const ws = [
        window(100, 6, ways, holdUs * 1.4),
        window(400, 6, ways, holdUs),
        window(1000, 6, ways, holdUs * 0.8),
      ];
      const got = fitLocks(ws, KINDS, typed(['begin', 'update', 'end']));
      assert.deepEqual(
        got.map((l) => [l.op, l.nth, l.release, l.ways]),
        [['update', 2, 'end', ways]],
        `${ways} ways, hold ${holdUs} us`,
      );
      assert.equal(got[0].byLoad.length, 3);
    }
});

test('no section where the waits are too few, too rare, or a kind was never profiled', () => {
  // A handful of waits: a latch now and then.
  const few = window(100, 1, 1, 1000);
  assert.ok(few.places[2].waited < MIN_WAITS);
  assert.deepEqual(fitLocks([few], KINDS, typed(['begin', 'update', 'end'])), []);
  // Many waits, but at most 1% of the requests at every load.
  const rare = window(700, 60, 60, 800);
  assert.ok(rare.places[2].waited >= MIN_WAITS && rare.places[2].waited / rare.places[2].requests <= 0.01);
  assert.deepEqual(fitLocks([rare], KINDS, typed(['begin', 'update', 'end'])), []);
  // The release's kind is not among the request types.
  assert.deepEqual(fitLocks([window(400, 6, 1, 900)], KINDS, typed(['begin', 'update'])), []);
});

test("each type's calls follow its places, and the types' rates by their shares come to the call's", () => {
  // begin, update, update, end: the commit makes every fsync, the updates the lseeks
  // (two each, the second update three), and a call no place made keeps its rate.
  const place = (calls: [string, number][]): Place => ({
    requests: 100,
    waited: 0,
    waitNs: 0,
    holds: 100,
    holdNs: 0,
    calls: new Map(calls),
  });
  const w: PlaceWindow = {
    rps: 400,
    windowS: 1,
    sent: 400,
    places: [place([]), place([['lseek', 200]]), place([['lseek', 300]]), place([['fdatasync', 100]])],
  };
  const types = typed(['begin', 'update', 'end']).map((r, i) => ({ ...r, share: [0.25, 0.5, 0.25][i] }));
  const replay = [
    { name: 'fdatasync', perReq: 0.25 },
    { name: 'lseek', perReq: 1.25 },
    { name: 'kill', perReq: 0.01 },
  ];
  const got = typeReplay(replay, [w], KINDS, types)!;
  const rate = (op: string, name: string) => got.get(op)!.find((c) => c.name === name)!.perReq;
  assert.deepEqual(
    ['begin', 'update', 'end'].map((op) => [rate(op, 'fdatasync'), rate(op, 'lseek'), rate(op, 'kill')]),
    [
      [0, 0, 0.01],
      [0, 2.5, 0.01],
      [1, 0, 0.01],
    ],
  );
  for (const name of ['fdatasync', 'lseek', 'kill'])
    assert.ok(
      Math.abs(
        types.reduce((a, t) => a + t.share * rate(t.op, name), 0) -
          replay.find((c) => c.name === name)!.perReq,
      ) < 1e-9,
      name,
    );
  // No calls by place (a trace without them): no types' own.
  assert.equal(
    typeReplay(replay, [{ ...w, places: w.places.map((p) => ({ ...p, calls: new Map() })) }], KINDS, types),
    null,
  );
});

test("a section's waits sleep on a latch where its place's waits were mostly in epoll_wait or poll", () => {
  const place = (waited: number, calls: [string, number][]): Place => ({
    requests: 100,
    waited,
    waitNs: 0,
    holds: 100,
    holdNs: 0,
    calls: new Map(calls),
  });
  const w = (places: Place[]): PlaceWindow => ({ rps: 400, windowS: 1, sent: 400, places });
  // A window where the place never waited does not count, however many futex calls it made.
  const latch = place(20, [
    ['epoll_wait', 30],
    ['futex', 10],
    ['read', 30],
  ]);
  assert.equal(waitOf([place(0, [['futex', 500]]), latch]), 'latch');
  assert.equal(
    waitOf([
      place(20, [
        ['futex', 40],
        ['poll', 5],
      ]),
    ]),
    'futex',
  );
  assert.equal(waitOf([place(0, [])]), 'futex');
  // The latch's 30 wakes in a window of 400 requests: 0.075 of read and kill a request less,
  // its place's reads less its wakes, the kills (made by the commit) less their share; the
  // wakes of a place that is no latch section's stay.
  const other = place(5, [
    ['epoll_wait', 5],
    ['read', 5],
  ]);
  const giver = place(0, [['kill', 40]]);
  const got = withoutLatchCalls(
    [
      { name: 'read', perReq: 0.1 },
      { name: 'kill', perReq: 0.075 },
      { name: 'futex', perReq: 1.25 },
    ],
    [w([other, latch, giver])],
    [1],
  );
  assert.deepEqual(
    got.replay.map((c) => [c.name, c.perReq]),
    [
      ['read', 0.025],
      ['futex', 1.25],
    ],
  );
  const after = got.windows[0].places;
  assert.deepEqual(
    [
      after[0].calls.get('read'),
      after[1].calls.get('read'),
      after[1].calls.get('epoll_wait'),
      after[2].calls.get('kill'),
    ],
    [5, 0, 30, 10],
  );
  // No latch section: nothing taken out.
  assert.equal(withoutLatchCalls([{ name: 'read', perReq: 0.1 }], [w([latch])], []).replay[0].perReq, 0.1);
  // A call made by a cold cache alone (none a request besides) stays.
  const cold = { name: 'pread64', perReq: 0, cold: { pages: 1700, touches: 0.15 } };
  assert.deepEqual(withoutLatchCalls([cold], [w([other, latch, giver])], [1]).replay, [cold]);
});
