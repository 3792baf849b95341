import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filesUnder, leaks, originalStrings } from '../privacy/leaks.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');
const out = mkdtempSync(join(tmpdir(), 'twin-e2e-'));

// The time limit only stops a hung run; how long cloning takes is a benchmark's figure.
test(
  'twin clone clones memcached end to end, and the clone answers every request',
  { timeout: 600_000 },
  () => {
    const r = spawnSync(
      'node',
      [
        TWIN,
        'clone',
        '-q',
        '--tune-iterations',
        '3',
        '--workload',
        join(ROOT, 'test/fixtures/memcached-short.yaml'),
        '--out',
        out,
      ],
      { encoding: 'utf8' },
    );
    // A clone of this short workload, tuned three times, may miss a fidelity target: then it
    // must say so (exit 3, a verdict line naming what) rather than report done.
    assert.ok(r.status === 0 || r.status === 3, r.stderr);
    const c = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8'));
    assert.equal(r.status, c.verdict.holds ? 0 : 3);
    const line = r.stdout.split('\n').find((l) => l.startsWith('verdict: '));
    assert.match(line ?? '', c.verdict.holds ? /^verdict: holds/ : /^verdict: misses \d+ of \d+ targets: \S/);
    assert.equal(/^done in/m.test(r.stdout), c.verdict.holds);
    assert.ok(r.stdout.split('\n').every((l) => l.length <= 120));
    const row = (m: string) => c.rows.find((x: { metric: string }) => x.metric === m);
    assert.equal(row('errors.count').clone, 0);
    assert.equal(row('threads.count').clone, row('threads.count').original);
    const rel = (m: string) => Math.abs(row(m).clone - row(m).original) / row(m).original;
    assert.ok(rel('net.bytes_per_req') < 0.02, `net bytes ${JSON.stringify(row('net.bytes_per_req'))}`);
    // memcached's logger thread adapts its sleep (700 to 950 wake-ups/s at 500 requests/s from
    // one run to the next): a third of its calls per request, so this short run allows 15%;
    // the demo's three rounds per load point are held to 10%.
    assert.ok(rel('syscalls.per_req') < 0.15, `syscalls ${JSON.stringify(row('syscalls.per_req'))}`);
    // The serving threads' instructions (its timed LRU threads' work under Valgrind follows
    // the clock and is left out): memcached's moved by 0.2% from pair to pair, and tuned
    // iterations came within 1.8 to 5.8% of them. 10% fails a clone whose body is missing
    // (its skeleton alone: 71% of the original's).
    assert.ok(rel('insns.per_req') < 0.1, `instructions ${JSON.stringify(row('insns.per_req'))}`);
  },
);

test("neither the tuned profile nor the tuned clone carries memcached's strings or symbols", () => {
  const memcached = execFileSync('sh', ['-c', 'command -v memcached'], { encoding: 'utf8' }).trim();
  const strings = originalStrings(memcached);
  // memcached names its threads from .rodata: a profile that kept thread names would fail.
  assert.ok(strings.includes('mc-worker'));
  assert.deepEqual(leaks(strings, [join(out, 'profile.json'), ...filesUnder(join(out, 'clone'))]), []);
});
