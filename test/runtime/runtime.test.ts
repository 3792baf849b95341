import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// runtime/test/run.sh runs hand-written clones of each network model and protocol: replies
// well-formed and of the configured sizes, threads and processes as configured, system calls
// per request as configured (strace), clean shutdown, port in use, memcheck.
test(
  'clone runtime: network models, protocols, per-request system calls, shutdown',
  { timeout: 300_000 },
  () => {
    const r = spawnSync('bash', [join(ROOT, 'runtime/test/run.sh')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`.slice(-3000));
    assert.match(r.stdout + r.stderr, /all runtime tests passed/);
  },
);
