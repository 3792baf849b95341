import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelWork } from '../../src/profile/index.js';
import type { Observation } from '../../src/collect/observe.js';
import type { SyscallTrace } from '../../src/collect/bpftrace.js';

/** A traced window of `sent` requests on one serving thread: a receive and a send on its socket
 *  each, and `writes` pwrite64 calls of `size` bytes on a regular file, and as many fdatasync. */
function window(sent: number, writes: number, size: number): Observation {
  const trace: SyscallTrace = {
    byThread: new Map([
      [
        11,
        {
          pid: 10,
          calls: new Map([
            ['recvfrom', sent],
            ['sendto', sent],
            ['pwrite64', writes],
            ['fdatasync', writes],
          ]),
        },
      ],
    ]),
    io: [
      { tid: 11, call: 'recvfrom', fd: 5, socket: true, file: false, bytes: 80, count: sent },
      { tid: 11, call: 'sendto', fd: 5, socket: true, file: false, bytes: 90, count: sent },
      { tid: 11, call: 'pwrite64', fd: 7, socket: false, file: true, bytes: size, count: writes },
    ],
    places: [],
  };
  return {
    load: { sent },
    trace,
    processes: [{ pid: 10, tids: [11] }],
    during: [],
    threadNsPerSec: new Map(),
  } as unknown as Observation;
}

test("the replayed calls' rates and sizes are pooled over every traced window, the skeleton's calls left out", () => {
  // A database's first window writes more a request than the later ones (its cache filling).
  const first = window(1000, 200, 8192);
  const k = kernelWork(first, 'recvfrom', 'sendto', [window(3000, 300, 4096)]);
  assert.deepEqual(
    k.replay.map((r) => r.name),
    ['fdatasync', 'pwrite64'],
  );
  const pwrite = k.replay.find((r) => r.name === 'pwrite64')!;
  assert.equal(pwrite.perReq, 500 / 4000);
  assert.deepEqual(pwrite.sizes, [
    [4096, 300],
    [8192, 200],
  ]);
  // Every call by name is the first window's.
  assert.equal(k.byName.pwrite64, 0.2);
  assert.deepEqual(k.recvSizes, [[80, 1000]]);
  // Without other windows, the first's alone.
  assert.equal(
    kernelWork(first, 'recvfrom', 'sendto').replay.find((r) => r.name === 'pwrite64')!.perReq,
    0.2,
  );
});

test("a map's lengths and its share on a file are its serving threads' over the windows", () => {
  const w = window(1000, 0, 4096);
  w.trace!.byThread.get(11)!.calls.set('mmap', 1000);
  w.trace!.maps = [
    { tid: 11, file: true, bytes: 4096, count: 750 },
    { tid: 11, file: false, bytes: 512, count: 250 },
    // (not a serving thread's)
    { tid: 12, file: false, bytes: 65536, count: 5 },
  ];
  const mmap = kernelWork(w, 'recvfrom', 'sendto').replay.find((r) => r.name === 'mmap')!;
  assert.equal(mmap.perReq, 1);
  assert.deepEqual(mmap.sizes, [
    [512, 250],
    [4096, 750],
  ]);
  assert.equal(mmap.fileShare, 0.75);
  // No call but mmap has a share.
  assert.ok(
    kernelWork(w, 'recvfrom', 'sendto').replay.every((r) => r.name === 'mmap' || r.fileShare === undefined),
  );
});

test("the share of a call made after the reply is its calls after the skeleton's send", () => {
  const w = window(1000, 400, 4096);
  // Of its 400 pwrite64, 300 came after a sendto (bit 4), 50 after a write (bit 1) alone.
  w.trace!.after = [
    { tid: 11, call: 'pwrite64', sends: 4, count: 300 },
    { tid: 11, call: 'pwrite64', sends: 1, count: 50 },
  ];
  const k = kernelWork(w, 'recvfrom', 'sendto');
  assert.equal(k.replay.find((r) => r.name === 'pwrite64')!.afterShare, 0.75);
  assert.equal(k.replay.find((r) => r.name === 'fdatasync')!.afterShare, undefined);
});
