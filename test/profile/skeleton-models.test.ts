import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Workload } from '../../src/model/index.js';
import { launchTarget } from '../../src/collect/target.js';
import { observe } from '../../src/collect/observe.js';
import { inferSkeleton } from '../../src/profile/skeleton.js';
import { backgroundThreads } from '../../src/generate/clone.js';
import type { Profile } from '../../src/model/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUILD = join(ROOT, 'runtime/build');

// The runtime's example servers, one of each network model, run as targets: traced under load
// (bpftrace, as profiling does), the skeleton inferred from what their threads and processes did.
const CASES: {
  name: string;
  env?: string;
  proto: 'memcached' | 'resp' | 'http';
  model: string;
  io: string;
  workers: number;
  spare?: number;
  perProcess?: number;
  background: number;
  ownProcesses?: number;
}[] = [
  { name: 'example_clone', proto: 'memcached', model: 'worker-pool', io: 'epoll', workers: 4, background: 2 },
  { name: 'example_resp', proto: 'resp', model: 'event-loop', io: 'epoll', workers: 1, background: 2 },
  { name: 'example_http', proto: 'http', model: 'prefork', io: 'epoll', workers: 2, background: 3 },
  ...[
    { env: 'TWIN_TEST_NET=3', model: 'thread-per-connection', io: 'blocking', workers: 1 },
    { env: 'TWIN_TEST_NET=4', model: 'process-pool', io: 'blocking', workers: 3 },
    // 2 processes at the start, one kept idle: 5 on 4 connections, waiting in poll.
    {
      env: 'TWIN_TEST_NET=4 TWIN_TEST_SPARE=1 TWIN_TEST_POLL=1',
      flags: '--workers 2',
      model: 'process-pool',
      io: 'poll',
      workers: 2,
      spare: 1,
    },
    { env: 'TWIN_TEST_NET=5', model: 'process-per-connection', io: 'blocking', workers: 1 },
    // PostgreSQL's shape: a process per connection waiting in epoll on its socket, receiving
    // first, and two background processes beside the main one's background thread.
    {
      env: 'TWIN_TEST_NET=5 TWIN_TEST_POLL=epoll TWIN_TEST_BGPROC=2',
      model: 'process-per-connection',
      io: 'epoll',
      workers: 1,
      background: 3,
      ownProcesses: 2,
    },
    // 2 processes of a main thread, a listener and 4 serving threads.
    {
      env: 'TWIN_TEST_NET=6',
      flags: '--workers 2',
      model: 'process-threads',
      io: 'blocking',
      workers: 2,
      perProcess: 4,
    },
  ].map((c) => ({
    ...c,
    name: `example_blocking${c.flags ? ` ${c.flags}` : ''}`,
    proto: 'memcached' as const,
    background: 1,
    ...c,
  })),
];

const CONNECTIONS = 4;

test(
  'the network model, its workers and the background threads and processes, inferred from the example servers of the seven models',
  { timeout: 240_000 },
  async () => {
    const make = spawnSync('make', ['-s', '-C', join(ROOT, 'runtime')], { encoding: 'utf8' });
    assert.equal(make.status, 0, make.stderr);
    for (const c of CASES) {
      const env = c.env ? `env ${c.env} ` : '';
      const w = Workload.parse({
        command: `${env}${join(BUILD, c.name)} --port {port}`,
        protocol: c.proto,
        connections: CONNECTIONS,
        keys: 50,
        requests: [{ op: 'get', share: 1 }],
        loads: [400],
        duration: 2,
      });
      const target = await launchTarget({
        command: w.command!,
        dir: ROOT,
        templates: [],
        files: [],
        startTimeoutS: 10,
      });
      try {
        const o = await observe(target, w, 400, { trace: true, preload: false });
        const sk = inferSkeleton(o);
        const what = `${c.name}${env ? ` (${env.trim()})` : ''}: ${JSON.stringify({ ...sk, threads: sk.threads.map((t) => t.role) })}`;
        assert.equal(sk.networkModel, c.model, what);
        assert.equal(sk.workers, c.workers, what);
        assert.equal(sk.io, c.io, what);
        assert.equal(sk.spare, c.spare ?? 0, what);
        assert.equal(sk.threadsPerProcess, c.perProcess ?? 0, what);
        // The clone of it makes as many background threads as the original had.
        const bg = backgroundThreads({ skeleton: sk } as Profile);
        assert.equal(bg.length, c.background, what);
        assert.equal(bg.filter((b) => b.ownProcess).length, c.ownProcesses ?? 0, what);
        // Receiving first (it receives once a request) is no receive until EAGAIN.
        if (c.io === 'epoll' && c.model === 'process-per-connection')
          assert.equal(sk.recvUntilEagain, false, what);
        // A thread or a process for each connection, seen while they were open.
        const serving = sk.threads.filter((t) => t.role === 'worker' || t.role === 'event-loop').length;
        if (c.model.endsWith('per-connection')) assert.equal(serving, CONNECTIONS, what);
        if (c.model === 'process-per-connection')
          assert.equal(sk.processes, 1 + (c.ownProcesses ?? 0) + CONNECTIONS, what);
      } finally {
        await target.stop();
      }
    }
  },
);
