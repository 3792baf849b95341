import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');
const tmp = mkdtempSync(join(tmpdir(), 'twin-verdict-'));

const twin = (args: string[]) =>
  spawnSync(process.execPath, [TWIN, ...args], { encoding: 'utf8', timeout: 300_000 });

// The time limit only stops a hung run.
test(
  'a clone that misses a target: validate names it in the verdict and exits 3',
  { timeout: 360_000 },
  () => {
    // memcached's clone from its committed profile, its GET replies made twice as long: every
    // other figure as profiled, the bytes a request far off.
    const profile = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/profile-memcached.json'), 'utf8'));
    for (const r of profile.requests)
      if (r.op === 'get') r.responseSizes = r.responseSizes.map(([s, n]: [number, number]) => [2 * s, n]);
    writeFileSync(join(tmp, 'profile.json'), JSON.stringify(profile));
    const clone = join(tmp, 'clone');
    assert.equal(twin(['generate', join(tmp, 'profile.json'), '-o', clone]).status, 0);
    const workload = join(tmp, 'w.yaml');
    writeFileSync(
      workload,
      `command: [memcached, -p, "{port}", -U, 0, -l, 127.0.0.1, -t, 4, -c, 1024, -u, root]
protocol: memcached
connections: 4
keys: 200
requests: [{ op: get, share: 0.9 }, { op: set, share: 0.1, valueSize: { min: 64, max: 512 } }]
loads: [300]
duration: 500ms
`,
    );
    const json = join(tmp, 'comparison.json');
    const r = twin(['validate', '-q', '--no-cpu', '-w', workload, '-c', clone, '--json', json]);
    assert.equal(r.status, 3, r.stderr);
    const line = r.stdout.split('\n').find((l) => l.startsWith('verdict:'));
    assert.match(line ?? '', /^verdict: misses \d+ of \d+ targets: .*net\.bytes_per_req@300 \+\d+\.\d%/);
    assert.ok(line!.length <= 120);
    assert.doesNotMatch(r.stdout, /^done/m);
    const c = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(c.verdict.holds, false);
    assert.ok(c.verdict.failing.some((f: string) => f.startsWith('net.bytes_per_req@300')));
    assert.equal(c.run.loadSeed === c.run.tuningSeed, false);
  },
);
