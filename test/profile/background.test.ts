import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backgroundAt,
  backgroundOf,
  coupledBackground,
  diskPerRequest,
  line,
  type ThreadActivity,
} from '../../src/profile/skeleton.js';
import type { Observation } from '../../src/collect/observe.js';

// memcached's LRU maintainer in two 10 s windows on this machine: 7,755 clock_nanosleep wake-ups
// and 14.5 ms of CPU time a second at 500 requests a second; 23,998 and 54.9 ms at 5,000.
const thread = (wakes: number, cpuMsPerSec: number): ThreadActivity => ({
  pid: 1,
  tid: 2,
  calls: new Map([['clock_nanosleep', wakes]]),
  total: wakes,
  socketIo: 0,
  accepts: 0,
  cpuNsPerSec: cpuMsPerSec * 1e6,
  disk: new Map(),
});
const window = (sent: number) => ({ load: { sent }, windowS: 10 }) as unknown as Observation;

test('a background thread keeps its CPU time a second, as a line in the request rate', () => {
  const lo = backgroundOf(thread(7755, 14.5), 10);
  assert.equal(lo.sleep, 'clock_nanosleep');
  assert.equal(lo.cpuNsPerSec, 14.5e6);
  const b = coupledBackground(thread(7755, 14.5), window(5000), thread(23998, 54.9), window(50000));
  // Through both points: 14.5 ms a second at 500 requests a second, 54.9 at 5,000.
  assert.ok(Math.abs(b.cpuNsPerSec + 500 * b.cpuNsPerReq - 14.5e6) < 1e3, JSON.stringify(b));
  assert.ok(Math.abs(b.cpuNsPerSec + 5000 * b.cpuNsPerReq - 54.9e6) < 1e4, JSON.stringify(b));
  assert.ok(b.wakesPerReq > 0.3 && b.wakesPerReq < 0.4, JSON.stringify(b));
});

test('the CPU line keeps both terms at least zero and goes through the lowest load', () => {
  assert.deepEqual(line(500, 10, 5000, 5), { base: 10, slope: 0 }); // less when busier: flat
  assert.deepEqual(line(500, 10, 550, 50), { base: 10, slope: 0 }); // loads too close: flat
  const steep = line(500, 10, 1000, 100); // would cross zero before 500: through the origin
  assert.equal(steep.base, 0);
  assert.equal(steep.base + 500 * steep.slope, 10);
});

test("a background thread's points by load keep each load's wake-ups and CPU time", () => {
  // memcached's background threads together at 500, 2,000 and 5,000 requests a second woke
  // 883, 1,824 and 2,447 times a second: not a line (a line through the ends gives 1,404 at
  // 2,000), so the clone follows the points.
  const pts = [
    [5000, 8830, 14.5],
    [20000, 18240, 30],
    [50000, 24470, 54.9],
  ].map(([sent, wakes, ms]) => backgroundAt(thread(wakes, ms), 10, sent));
  assert.deepEqual(
    pts.map((p) => p.rps),
    [500, 2000, 5000],
  );
  // Within a wake-up period's rounding to whole microseconds.
  [883, 1824, 2447].forEach((hz, k) => assert.ok(Math.abs(pts[k].hz - hz) / hz < 0.002, `${pts[k].hz}`));
  assert.equal(pts[1].cpuNsPerSec, 30e6);
});

test("a background writer's disk calls are rates a request over every window, apart from its wake-ups", () => {
  // A WAL writer asleep in epoll_wait: 20 wake-ups in a window of 1,000 requests, 3 writes of
  // 8 KiB and one of 16 KiB with 4 fdatasyncs; in a window of 3,000, 4 of 8 KiB and 4 syncs.
  const writer = (wakes: number, writes: [number, number][], syncs: number): ThreadActivity => ({
    ...thread(0, 1),
    calls: new Map([
      ['epoll_wait', wakes],
      ['pwrite64', writes.reduce((a, [, n]) => a + n, 0)],
      ['fdatasync', syncs],
      ['getppid', wakes],
    ]),
    total: wakes * 2 + writes.reduce((a, [, n]) => a + n, 0) + syncs,
    disk: new Map([
      ['pwrite64', writes],
      ['fdatasync', [[0, syncs]]],
    ]),
  });
  const lo = writer(
    20,
    [
      [8192, 3],
      [16384, 1],
    ],
    4,
  );
  const hi = writer(20, [[8192, 4]], 4);
  const disk = diskPerRequest([
    { a: lo, sent: 1000 },
    { a: hi, sent: 3000 },
  ]);
  assert.deepEqual(disk, [
    { name: 'fdatasync', perReq: 0.002 },
    {
      name: 'pwrite64',
      perReq: 0.002,
      sizes: [
        [8192, 7],
        [16384, 1],
      ],
    },
  ]);
  // Each wake-up's cheap calls leave the disk calls out: one getppid a wake-up.
  assert.equal(backgroundOf(lo, 10).callsPerWake, 1);
});
