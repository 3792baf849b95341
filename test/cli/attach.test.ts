import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, portOpen } from '../../src/collect/target.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');

test(
  'twin profile --pid attaches to a running server, profiles it, and leaves it running',
  { timeout: 120_000 },
  async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'twin-attach-'));
    const port = await freePort();
    const server = spawn(
      'memcached',
      ['-p', String(port), '-U', '0', '-l', '127.0.0.1', '-t', '2', '-c', '1024', '-u', 'root'],
      { stdio: 'ignore' },
    );
    try {
      for (let i = 0; i < 50 && !(await portOpen(port)); i++) await new Promise((r) => setTimeout(r, 100));
      const wl = join(tmp, 'w.yaml');
      writeFileSync(
        wl,
        `command: memcached -p {port} -U 0 -l 127.0.0.1 -t 2 -c 1024 -u root
protocol: memcached
connections: 4
keys: 100
requests: [{ op: get, share: 1 }]
loads: [300]
duration: 1
valgrindRequests: 200
`,
      );
      const out = join(tmp, 'p.json');
      const r = spawnSync(
        process.execPath,
        [TWIN, 'profile', '-q', '-w', wl, '--pid', String(server.pid), '--port', String(port), '-o', out],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      const p = JSON.parse(readFileSync(out, 'utf8'));
      // -t 2: main, 2 workers and memcached's maintenance threads, as seen in the attached process.
      assert.equal(p.skeleton.networkModel, 'worker-pool');
      assert.equal(p.skeleton.workers, 2);
      assert.ok(p.body.original.insnsPerReq > 1000);
      assert.equal(server.exitCode, null, 'the attached server must still run');
      assert.ok(await portOpen(port));
      const bad = spawnSync(
        process.execPath,
        [TWIN, 'profile', '-q', '-w', wl, '--pid', String(server.pid), '-o', join(tmp, 'q.json')],
        { encoding: 'utf8' },
      );
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /--pid needs --port/);
      assert.ok(!existsSync(join(tmp, 'q.json')));
    } finally {
      server.kill('SIGTERM');
    }
  },
);
