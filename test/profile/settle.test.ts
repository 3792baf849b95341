/* Steady state: a target whose memory never stops growing is refused in one line.
 *
 * The privacy test's own server (test/privacy/server.c) with -g keeps 256 KiB of written
 * memory per request, so no window of warm-up load leaves its memory steady. `twin profile`
 * must stop within the workload's `settle` seconds with one line that says so and what to
 * change, exit 2, write no profile and leave no server running. The same server without -g
 * settles: the privacy test profiles it. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');
const work = mkdtempSync(join(tmpdir(), 'twin-settle-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Processes running `binary`. */
function running(binary: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[0] === binary;
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('a target whose memory keeps growing is refused in one line, exit 2', { timeout: 120_000 }, () => {
  const server = join(work, 'server');
  const cc = spawnSync('gcc', ['-std=c11', '-O2', '-o', server, join(ROOT, 'test/privacy/server.c')], {
    encoding: 'utf8',
  });
  assert.equal(cc.status, 0, `gcc failed: ${cc.stderr}`);
  const workload = join(work, 'workload.yaml');
  writeFileSync(
    workload,
    [
      'protocol: http',
      'connections: 2',
      'requests: [{ op: get, share: 1, path: /index.html }]',
      'loads: [200]',
      'duration: 2',
      'settle: 9s',
      'valgrindRequests: 200',
    ].join('\n') + '\n',
  );
  const out = join(work, 'profile.json');
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    [TWIN, 'profile', '-q', '-w', workload, '-o', out, '--', server, '-p', '{port}', '-g', '256'],
    { encoding: 'utf8', timeout: 100_000 },
  );
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(r.status, 2, `status ${r.status}, stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(
    lines[0],
    /did not settle in 9 s at 200 requests\/s: its memory grew [\d.]+ MiB in the last 2 s .*preload.*settle/,
  );
  // 200 requests/s keep 50 MiB a second: the line reports growth of that order.
  const grew = Number(/grew ([\d.]+) MiB/.exec(lines[0])![1]);
  assert.ok(grew > 20, `growth ${grew} MiB in 2 s is not the server's`);
  assert.ok(seconds < 60, `refused after ${seconds} s`);
  assert.equal(existsSync(out), false, 'a profile was written');
  assert.deepEqual(running(server), [], 'the server is still running');
});
