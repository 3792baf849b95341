import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// loadgen/test/run.sh drives twin-load against a server of known delay (2 ms, then 0) on
// every protocol and checks the measured rate and latency, then against real memcached and
// redis; its parser unit tests run first.
test(
  'twin-load: rate and latency against a server of known delay, real targets, bad flags',
  { timeout: 300_000 },
  () => {
    const r = spawnSync('bash', [join(ROOT, 'loadgen/test/run.sh')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`.slice(-3000));
    assert.match(r.stdout + r.stderr, /all twin-load tests passed/);
  },
);
