/* Privacy: profiles and clones carry none of the original's strings or symbols.
 *
 * A server of our own (server.c) plants long, distinctive strings in its .rodata and
 * distinctive function and variable names in its symbol table, and uses them in every
 * response. Twin profiles it, generates a clone and builds it; none of the server's strings or
 * symbols may appear in the profile, in any file of the clone's folder or in the clone's
 * binary. The same holds for the clones of Debian's memcached, redis-server and nginx built
 * from the committed fixture profiles. The search is shown to find a planted string, so a
 * search that finds nothing proves something.
 *
 * Twin is driven only through its CLI. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filesUnder, leaks, originalStrings, requireTool, type Leak } from './leaks.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');
const HERE = join(ROOT, 'test/privacy');
const work = mkdtempSync(join(tmpdir(), 'twin-privacy-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The planted secrets of server.c: strings in .rodata, then symbols. */
const PLANTED_STRINGS = [
  'PLANTED-SECRET-rodata-7f3a9c2e-do-not-leak',
  '/etc/planted-secret-dir/zeta.conf',
  'sk_live_PLANTED_51HkQ2xZ9vT4bR8mN3pLwY0qJ',
  'plntd-loop-x7q',
];
const PLANTED_SYMBOLS = [
  'planted_secret_handler_q9x',
  'planted_secret_init_table_j8w',
  'planted_secret_table_k4z',
  'planted_secret_requests_served_t1g',
  'planted_secret_banner_m2w',
  'planted_secret_config_path_v5n',
  'planted_secret_api_key_h3d',
  'planted_secret_thread_name_b6c',
];

/** Runs Twin's CLI; a failure shows its stderr. The time limit stops a hung run (spawnSync
 *  blocks node:test's own timeout). */
function twin(args: string[], timeoutS = 60): void {
  const r = spawnSync('node', [TWIN, ...args], {
    encoding: 'utf8',
    timeout: timeoutS * 1000,
    killSignal: 'SIGTERM',
  });
  assert.ok(!r.error, `twin ${args.join(' ')}: ${r.error?.message}`);
  assert.equal(r.status, 0, `twin ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
}

function describe(found: Leak[]): string {
  return (
    found
      .slice(0, 30)
      .map((l) => `"${l.string}" in ${l.file}`)
      .join('\n') + (found.length > 30 ? `\n… and ${found.length - 30} more` : '')
  );
}

function assertNoLeaks(strings: string[], files: string[]): void {
  assert.ok(files.length > 0, 'no files to search');
  for (const f of files) assert.ok(statSync(f).size > 0, `${f} is empty`);
  const found = leaks(strings, files);
  assert.deepEqual(found, [], `the original's strings or symbols found:\n${describe(found)}`);
}

const server = join(work, 'server');
const profile = join(work, 'profile.json');
const clone = join(work, 'clone');
let own: string[] = [];

test("the search finds the planted server's strings and symbols", { timeout: 120_000 }, () => {
  requireTool('gcc');
  const r = spawnSync(
    'gcc',
    ['-std=c11', '-O2', '-Wall', '-Wextra', '-Werror', '-o', server, join(HERE, 'server.c')],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `gcc failed: ${r.stderr}`);
  own = originalStrings(server);
  for (const s of [...PLANTED_STRINGS, ...PLANTED_SYMBOLS])
    assert.ok(own.includes(s), `"${s}" is not among the server's strings: ${JSON.stringify(own)}`);
  // Its other own strings (usage and error messages) are searched too.
  assert.ok(
    own.length > PLANTED_STRINGS.length + PLANTED_SYMBOLS.length,
    `only ${own.length} strings found in the server`,
  );
});

test(
  "neither the profile nor the clone carries the planted server's strings or symbols",
  { timeout: 300_000 },
  () => {
    assert.ok(own.length > 0, 'the server was not built (see the test before)');
    // The command after -- replaces the workload's; Twin fills in {port}.
    twin(
      ['profile', '-q', '-w', join(HERE, 'workload.yaml'), '-o', profile, '--', server, '-p', '{port}'],
      280,
    );
    twin(['generate', profile, '-o', clone]);
    twin(['build', clone], 120);
    const binary = join(clone, 'clone');
    assert.ok(existsSync(binary), `twin build made no ${binary}`);
    const files = [profile, ...filesUnder(clone)];
    assert.ok(
      files.includes(join(clone, 'clone.c')) && files.includes(join(clone, 'Makefile')),
      `the clone's folder lacks its sources: ${files.join(' ')}`,
    );
    assertNoLeaks(own, files);
  },
);

test("the search reports a planted string in a clone's source and in its binary", { timeout: 60_000 }, () => {
  assert.ok(existsSync(join(clone, 'clone')), 'no clone was built (see the test before)');
  const copy = join(work, 'clone-copy');
  cpSync(clone, copy, { recursive: true });
  const source = join(copy, 'clone.c');
  const text = readFileSync(source, 'utf8');
  const mid = text.indexOf('\n', text.length >> 1) + 1;
  writeFileSync(source, `${text.slice(0, mid)}/* ${PLANTED_STRINGS[0]} */\n${text.slice(mid)}`);
  assert.deepEqual(leaks(own, [profile, ...filesUnder(copy)]), [
    { string: PLANTED_STRINGS[0], file: source },
  ]);

  const binary = join(work, 'clone-binary-copy');
  copyFileSync(join(clone, 'clone'), binary);
  appendFileSync(
    binary,
    Buffer.concat([Buffer.from([0]), Buffer.from(PLANTED_SYMBOLS[0], 'latin1'), Buffer.from([0])]),
  );
  assert.deepEqual(leaks(own, [profile, join(clone, 'clone'), binary]), [
    { string: PLANTED_SYMBOLS[0], file: binary },
  ]);
});

for (const [target, fixture] of [
  ['memcached', 'memcached'],
  ['redis-server', 'redis'],
  ['nginx', 'nginx'],
  ['/usr/lib/postgresql/15/bin/postgres', 'postgres'],
] as const) {
  test(
    `neither the fixture profile nor the clone carries ${target}'s strings or symbols`,
    { timeout: 120_000 },
    () => {
      // Debian's binaries are stripped: their .rodata strings and dynamic symbols.
      const original = target.startsWith('/')
        ? existsSync(target)
          ? target
          : assert.fail(`${target} is not installed: npm run bootstrap installs it`)
        : requireTool(target, 'npm run bootstrap installs it');
      const strings = originalStrings(original);
      assert.ok(strings.length >= 300, `only ${strings.length} strings found in ${original}`);
      const fixtureProfile = join(ROOT, `test/fixtures/profile-${fixture}.json`);
      const dir = join(work, `clone-${fixture}`);
      twin(['generate', fixtureProfile, '-o', dir]);
      twin(['build', dir], 120);
      assert.ok(existsSync(join(dir, 'clone')), `twin build made no ${join(dir, 'clone')}`);
      assertNoLeaks(strings, [fixtureProfile, ...filesUnder(dir)]);
    },
  );
}
