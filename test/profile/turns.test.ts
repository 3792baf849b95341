import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseBpftraceJson, type SyscallTrace } from '../../src/collect/bpftrace.js';
import { turnMarks } from '../../src/profile/replayed.js';
import type { Observation } from '../../src/collect/observe.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/collect/fixtures/${name}`, import.meta.url), 'utf8');

const windowOf = (trace: SyscallTrace, tid: number) => [
  { x: { trace } as unknown as Observation, tids: new Set([tid]) },
];

/** A thread's turns drawn at random: `turns` turns of 1 to 4 requests (most of one), each
 *  request needing the call with odds `share`; the call made for each request that needs it,
 *  or once a turn where any does (`once`). */
function simulated(turns: number, share: number, once: boolean, seed = 7): SyscallTrace {
  let x = seed;
  const rand = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const hist = new Map<number, number>();
  let calls = 0;
  let repeats = 0;
  for (let i = 0; i < turns; i++) {
    const r = rand();
    const k = r < 0.8 ? 1 : r < 0.93 ? 2 : r < 0.98 ? 3 : 4;
    hist.set(k, (hist.get(k) ?? 0) + 1);
    let need = 0;
    for (let j = 0; j < k; j++) need += rand() < share ? 1 : 0;
    const made = once ? Math.min(need, 1) : need;
    calls += made;
    repeats += Math.max(0, made - 1);
  }
  return {
    byThread: new Map([[5, { pid: 5, calls: new Map([['fdatasync', calls]]) }]]),
    io: [],
    places: [],
    turns: [...hist].map(([requests, count]) => ({ tid: 5, requests, count })),
    repeats: repeats ? [{ tid: 5, call: 'fdatasync', fd: 7, socket: false, file: true, count: repeats }] : [],
  };
}

test("a real Redis's log synced once a turn: no sync again in a turn of several requests", () => {
  // redis-server, appendfsync always, 2,000 requests a second on 8 connections, 3 in 10 sets:
  // 1,527 of its 11,340 turns served two requests or more, none synced twice.
  const t = parseBpftraceJson(fixture('bpftrace-redis-turns.json'));
  const requests = t.turns!.reduce((a, e) => a + e.requests * e.count, 0);
  assert.equal(requests, 13192);
  assert.ok(!t.repeats!.some((r) => r.call === 'fdatasync'));
  const m = turnMarks(windowOf(t, 20599), 'fdatasync')!;
  // More requests need it than it was made for: the turns of several shared one.
  assert.ok(m > 4426 / requests && m < 0.4, `marks ${m}`);
  // Its accept4 and setsockopt came again in a turn (a connection each): made for each.
  assert.equal(turnMarks(windowOf(t, 20599), 'setsockopt'), null);
});

test('a call made for each request reads as such; one made once a turn gives the share that needs it', () => {
  for (const seed of [1, 2, 3]) {
    assert.equal(turnMarks(windowOf(simulated(20000, 0.3, false, seed), 5), 'fdatasync'), null);
    const m = turnMarks(windowOf(simulated(20000, 0.3, true, seed), 5), 'fdatasync');
    assert.ok(m !== null && Math.abs(m - 0.3) < 0.02, `seed ${seed}: marks ${m}`);
  }
  // Too few turns of several requests to tell: made for each request.
  assert.equal(turnMarks(windowOf(simulated(200, 0.3, true), 5), 'fdatasync'), null);
  // A call on a socket is the skeleton's: its repeats there say nothing of the file's part.
  const t = simulated(20000, 0.3, true);
  t.byThread.get(5)!.calls.set('write', 30000);
  t.io.push({ tid: 5, call: 'write', fd: 9, socket: true, file: false, bytes: 5, count: 30000 });
  assert.equal(turnMarks(windowOf(t, 5), 'write'), null);
});
