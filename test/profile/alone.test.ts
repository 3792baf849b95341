import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Observation } from '../../src/collect/observe.js';
import type { SyscallTrace } from '../../src/collect/bpftrace.js';
import { splitByType } from '../../src/profile/places.js';
import { aloneMade } from '../../src/profile/replayed.js';
import { loadTypes } from '../../src/profile/index.js';
import type { RequestType, Workload } from '../../src/model/index.js';

const types = (shares: [string, number][]): RequestType[] =>
  shares.map(([op, share]) => ({ op, share, requestBytesMean: 0, responseSizes: [[1, 1]] }));

/** A traced run of `sent` requests of one type on an event loop (thread 5) beside an idle
 *  helper thread (6): each request a receive and a reply on its socket, and `file` appends and
 *  syncs of a log for each request (Redis's sets: 1; its gets: 0). */
function aloneRun(sent: number, file: number): Observation {
  const syncs = Math.round(sent * file);
  const trace: SyscallTrace = {
    byThread: new Map([
      [
        5,
        {
          pid: 5,
          calls: new Map([
            ['read', sent],
            ['write', sent + syncs],
            ['fdatasync', syncs],
            ['epoll_wait', sent],
          ]),
        },
      ],
      [6, { pid: 5, calls: new Map([['futex', 3]]) }],
    ]),
    io: [
      { tid: 5, call: 'read', fd: 9, socket: true, file: false, bytes: 36, count: sent },
      { tid: 5, call: 'write', fd: 9, socket: true, file: false, bytes: 5, count: sent },
      ...(syncs
        ? [{ tid: 5, call: 'write', fd: 7, socket: false, file: true, bytes: 200, count: syncs }]
        : []),
    ],
    places: [],
  };
  return {
    processes: [{ pid: 5, tids: [5, 6] }],
    threadNsPerSec: new Map(),
    trace,
    load: { sent },
  } as unknown as Observation;
}

test("each type's calls from its run alone: a set syncs its log, a get never, and the mix's rate holds", () => {
  const requests = types([
    ['get', 0.7],
    ['set', 0.3],
  ]);
  const made = aloneMade(
    [
      { op: 'GET', x: aloneRun(1500, 0) },
      { op: 'set', x: aloneRun(1500, 0.97) },
    ],
    requests,
  );
  // The replies' writes are the skeleton's: only the log's are counted.
  assert.equal(made.get('get')!.get('write'), 0);
  assert.ok(Math.abs(made.get('set')!.get('fdatasync')! - 0.97 * 0.3) < 1e-9);
  // The mix's calls: the sync once a turn for the requests that need it (Redis's 0.2994).
  const replay = [
    { name: 'fdatasync', perReq: 0.2832, turnMarks: 0.2994 },
    { name: 'write', perReq: 0.2832, turnMarks: 0.2994, sizes: [[110, 1]] as [number, number][] },
    { name: 'close', perReq: 0.0104 },
  ];
  const got = splitByType(replay, made, requests)!;
  const of = (op: string, name: string) => got.get(op)!.find((c) => c.name === name)!;
  assert.equal(of('get', 'fdatasync').perReq, 0);
  assert.equal(of('get', 'fdatasync').turnMarks, 0);
  // Every set marks the sync (0.2994 over its share 0.3, at most 1).
  assert.equal(of('set', 'fdatasync').turnMarks, 0.998);
  for (const name of ['fdatasync', 'write']) {
    const mix = requests.reduce((a, r) => a + r.share * of(r.op, name).perReq, 0);
    assert.ok(Math.abs(mix - 0.2832) < 1e-9, `${name} ${mix}`);
  }
  // A call no run alone made keeps its rate on both types.
  assert.deepEqual([of('get', 'close').perReq, of('set', 'close').perReq], [0.0104, 0.0104]);
  // Runs alone that made none of the replayed calls split nothing.
  assert.equal(
    splitByType(replay, aloneMade([{ op: 'get', x: aloneRun(100, 0) }], requests), requests),
    null,
  );
});

test('types are traced alone only where twin-load sends two or more', () => {
  const w = (ops: string[], driver = 'twin-load') =>
    ({
      driver: { name: driver, args: [] },
      requests: ops.map((op) => ({ op, share: 1 / ops.length })),
    }) as unknown as Workload;
  assert.deepEqual(loadTypes(w(['get', 'set'])), ['get', 'set']);
  // Two entries of one verb (GETs of two paths) are one type.
  assert.deepEqual(loadTypes(w(['GET', 'get'])), []);
  assert.deepEqual(loadTypes(w(['get', 'set'], 'pgbench')), []);
});
