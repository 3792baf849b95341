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
const CASES = [
  { name: 'example_clone', proto: 'memcached', model: 'worker-pool', workers: 4, background: 2 },
  { name: 'example_resp', proto: 'resp', model: 'event-loop', workers: 1, background: 2 },
  { name: 'example_http', proto: 'http', model: 'prefork', workers: 2, background: 3 },
  {
    name: 'example_blocking',
    net: 3,
    proto: 'memcached',
    model: 'thread-per-connection',
    workers: 1,
    background: 1,
  },
  { name: 'example_blocking', net: 4, proto: 'memcached', model: 'process-pool', workers: 3, background: 1 },
  {
    name: 'example_blocking',
    net: 5,
    proto: 'memcached',
    model: 'process-per-connection',
    workers: 1,
    background: 1,
  },
] as const;

const CONNECTIONS = 4;

test(
  'the network model, its workers and the background threads, inferred from six servers of the six models',
  { timeout: 240_000 },
  async () => {
    const make = spawnSync('make', ['-s', '-C', join(ROOT, 'runtime')], { encoding: 'utf8' });
    assert.equal(make.status, 0, make.stderr);
    for (const c of CASES) {
      const env = 'net' in c ? `env TWIN_TEST_NET=${c.net} ` : '';
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
        if (c.model.endsWith('per-connection')) assert.equal(sk.io, 'blocking', what);
        // The clone of it makes as many background threads as the original had.
        const bg = backgroundThreads({ skeleton: sk } as Profile);
        assert.equal(bg.length, c.background, what);
        // A thread or a process for each connection, seen while they were open.
        const serving = sk.threads.filter((t) => t.role === 'worker' || t.role === 'event-loop').length;
        if (c.model.endsWith('per-connection')) assert.equal(serving, CONNECTIONS, what);
        if (c.model === 'process-per-connection') assert.equal(sk.processes, 1 + CONNECTIONS, what);
      } finally {
        await target.stop();
      }
    }
  },
);
