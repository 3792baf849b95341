import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');
const tmp = mkdtempSync(join(tmpdir(), 'twin-bad-'));
const profileText = readFileSync(join(ROOT, 'test/fixtures/profile-memcached.json'), 'utf8');

function twin(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [TWIN, ...args], { encoding: 'utf8', env, timeout: 120_000 });
}

/** Exit code 2, exactly one line on stderr, no stack trace. */
function assertOneLine(r: ReturnType<typeof twin>, pattern: RegExp): void {
  assert.equal(r.status, 2, `status ${r.status}, stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
}

function workload(name: string, text: string): string {
  const f = join(tmp, name);
  writeFileSync(f, text);
  return f;
}

const short = (extra = '') => `command: memcached -p {port} -U 0 -l 127.0.0.1 -c 1024 -u root
protocol: memcached
connections: 2
keys: 50
requests: [{ op: get, share: 1 }]
loads: [200]
duration: 0.5
valgrindRequests: 100
${extra}`;

/** Processes whose command line mentions `needle`, other than this test's own. */
function processesWith(needle: string): string[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .flatMap((d) => {
      try {
        const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
        return cmd.includes(needle) && !cmd.includes('node --test') ? [cmd] : [];
      } catch {
        return [];
      }
    });
}

/** A PATH holding every program of the usual folders except `tool`. */
function pathWithout(tool: string): string {
  const farm = join(tmp, `without-${tool}`);
  mkdirSync(farm, { recursive: true });
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      if (f === tool || existsSync(join(farm, f))) continue;
      try {
        symlinkSync(join(dir, f), join(farm, f));
      } catch {
        /* a name twice */
      }
    }
  }
  return farm;
}

test('a profile of another version', () => {
  const f = join(tmp, 'v9.json');
  writeFileSync(f, JSON.stringify({ ...JSON.parse(profileText), schemaVersion: 9 }));
  const r = twin(['generate', f, '-o', join(tmp, 'clone-v9')]);
  assertOneLine(r, /schemaVersion 9/);
  assert.ok(!existsSync(join(tmp, 'clone-v9')));
});

test('a profile of the wrong shape', () => {
  const p = JSON.parse(profileText);
  delete p.skeleton.networkModel;
  const f = join(tmp, 'shape.json');
  writeFileSync(f, JSON.stringify(p));
  const r = twin(['generate', f, '-o', join(tmp, 'clone-shape')]);
  assertOneLine(r, /skeleton\.networkModel/);
  assert.ok(!existsSync(join(tmp, 'clone-shape')));
});

test('a workload with an unknown protocol or a negative share', () => {
  const out = join(tmp, 'p.json');
  assertOneLine(
    twin([
      'profile',
      '-q',
      '-w',
      workload('proto.yaml', short().replace('protocol: memcached', 'protocol: gopher')),
      '-o',
      out,
    ]),
    /at protocol/,
  );
  assertOneLine(
    twin([
      'profile',
      '-q',
      '-w',
      workload('share.yaml', short().replace('share: 1', 'share: -0.5')),
      '-o',
      out,
    ]),
    /share/,
  );
  assert.ok(!existsSync(out));
});

test('a workload whose duration is no duration: one line naming the field and the accepted forms', () => {
  const out = join(tmp, 'd.json');
  const r = twin([
    'profile',
    '-q',
    '-w',
    workload('ten.yaml', short().replace('duration: 0.5', 'duration: ten')),
    '-o',
    out,
  ]);
  assertOneLine(
    r,
    /"ten" is no duration: give seconds \(5\) or a number with a unit \(500ms, 10s, 2m\) at duration/,
  );
  assert.ok(!existsSync(out));
});

test('a workload with its command as a list and its duration with a unit is accepted', () => {
  // The workload goes through the CLI's reader; --pid without --port is refused only after
  // it was read, so that error shows the workload was accepted.
  const text = short()
    .replace(/^command: .*$/m, 'command: [memcached, -p, "{port}", -U, 0, -l, 127.0.0.1, -c, 1024, -u, root]')
    .replace('duration: 0.5', 'duration: 500ms');
  assertOneLine(
    twin(['profile', '-q', '-w', workload('list.yaml', text), '--pid', '1']),
    /--pid needs --port/,
  );
});

test('a tuning bound that is no whole number of iterations', () => {
  const f = join(tmp, 'iters.json');
  writeFileSync(f, profileText);
  assertOneLine(
    twin(['tune', f, '-w', workload('iters.yaml', short()), '-c', join(tmp, 'c'), '--iterations', '0']),
    /0 iterations: give a whole number, at least 1/,
  );
  assertOneLine(
    twin(['clone', '-q', '-w', workload('iters.yaml', short()), '--tune-iterations', 'many']),
    /many iterations/,
  );
});

test('a target that exits at start', () => {
  const out = join(tmp, 'exits.json');
  const r = twin([
    'profile',
    '-q',
    '-w',
    workload('exits.yaml', short()),
    '-o',
    out,
    '--',
    'sh',
    '-c',
    'echo no such option >&2; exit 3',
  ]);
  assertOneLine(r, /exited at start \(status 3\): no such option/);
  assert.ok(!existsSync(out));
});

/** A port to run a target on with --port: below the kernel's range for the local ends of
 *  outgoing connections (32768 to 60999 here), one of which another test's client may hold
 *  (memcached then failed to listen: 'Address already in use', status 71). */
const fixedPort = () => 20000 + Math.floor(Math.random() * 12000);

test('a port in use', async () => {
  const srv = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as { port: number }).port;
  const out = join(tmp, 'port.json');
  const r = spawnSync(
    process.execPath,
    [TWIN, 'profile', '-q', '-w', workload('port.yaml', short()), '-o', out, '--port', String(port)],
    { encoding: 'utf8' },
  );
  srv.close();
  assertOneLine(r, new RegExp(`port ${port} is in use`));
  assert.ok(!existsSync(out));
  assert.deepEqual(processesWith(`-p ${port} `), []);
});

for (const tool of ['bpftrace', 'valgrind']) {
  test(`${tool} missing`, { timeout: 120_000 }, () => {
    const port = fixedPort();
    const out = join(tmp, `no-${tool}.json`);
    const env = { ...process.env, PATH: pathWithout(tool) };
    assert.throws(() => execFileSync('sh', ['-c', `command -v ${tool}`], { env }));
    const r = twin(
      ['profile', '-q', '-w', workload(`no-${tool}.yaml`, short()), '-o', out, '--port', String(port)],
      env,
    );
    assertOneLine(r, new RegExp(`${tool} is missing`));
    assert.ok(!existsSync(out));
    assert.deepEqual(processesWith(`-p ${port} `), []);
  });
}

// The runtime's example server of the PostgreSQL protocol: a target that takes pgbench's connections.
const EXAMPLE_PG = join(ROOT, 'runtime/build/example_pg');
const postgres = (args: string, command = `${EXAMPLE_PG} --port {port}`) => `command: ${command}
protocol: postgres
driver: { name: pgbench, args: "${args}" }
preload: false
connections: 2
loads: [100]
duration: 1
settle: 4
startTimeout: 60
`;

test('driver pgbench not installed', { timeout: 120_000 }, () => {
  const port = fixedPort();
  const out = join(tmp, 'no-pgbench.json');
  const env = { ...process.env, PATH: pathWithout('pgbench') };
  assert.throws(() => execFileSync('sh', ['-c', 'command -v pgbench'], { env }));
  const r = twin(
    ['profile', '-q', '-w', workload('no-pgbench.yaml', postgres('-S')), '-o', out, '--port', String(port)],
    env,
  );
  assertOneLine(r, /pgbench is missing/);
  assert.ok(!existsSync(out));
  assert.deepEqual(processesWith(`example_pg --port ${port}`), []);
});

test('a pgbench log that does not parse', { timeout: 120_000 }, () => {
  assert.ok(existsSync(EXAMPLE_PG), 'runtime/build/example_pg is not built: make -C runtime');
  // A pgbench that knows its scripts and writes a log of another shape.
  const bin = join(tmp, 'fake-pgbench');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'pgbench'),
    [
      '#!/bin/sh',
      'for a; do case $a in',
      "  --show-script=*) echo 'SELECT 1;' >&2; exit 0 ;;",
      '  --log-prefix=*) p=${a#--log-prefix=} ;;',
      'esac; done',
      'echo "0 1 no-latency 0 1796552062 12" > "$p.1"',
      'echo "tps = 1.0"',
    ].join('\n'),
    { mode: 0o755 },
  );
  const port = fixedPort();
  const out = join(tmp, 'bad-log.json');
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const r = twin(
    ['profile', '-q', '-w', workload('bad-log.yaml', postgres('-S')), '-o', out, '--port', String(port)],
    env,
  );
  assertOneLine(r, /pgbench's log log\.1 line 1 does not parse/);
  assert.ok(!existsSync(out));
  assert.deepEqual(processesWith(`example_pg --port ${port}`), []);
});

test('a database that refuses the connection', { timeout: 180_000 }, () => {
  const port = fixedPort();
  const out = join(tmp, 'refused.json');
  const pg = `setpriv --reuid=postgres --regid=postgres --clear-groups -- /usr/lib/postgresql/15/bin/postgres -D {run}/pg -p {port} -k {run}/sock -c listen_addresses=127.0.0.1`;
  const text = `setup: sh ${join(ROOT, 'examples/postgres-tpcb/setup.sh')} {run} {port}\n${postgres('-S -U nosuchrole postgres', pg)}`;
  const r = twin(['profile', '-q', '-w', workload('refused.yaml', text), '-o', out, '--port', String(port)]);
  assertOneLine(r, /pgbench failed \(status 1\): .*role "nosuchrole" does not exist/);
  assert.ok(!existsSync(out));
  assert.deepEqual(processesWith(`-p ${port} `), []);
});
