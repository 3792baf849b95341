import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { END, START, TableError, parseResults, render, renderPage, rewrite } from '../../bench/table.js';

// Made-up figures in the bench's shape: memcached on two platforms, redis failed, nginx missing a target.
const FIXTURE = fileURLToPath(new URL('../../../test/bench/fixtures/results.json', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../bench/table.js', import.meta.url));
const fixtureText = readFileSync(FIXTURE, 'utf8');

/** The cells of the table row whose first two cells are `target` and `platform`. */
function cells(block: string, target: string, platform: string): string[] {
  let current = '';
  for (const line of block.split('\n')) {
    if (!line.startsWith('|') || line.startsWith('|-')) continue;
    const c = line
      .slice(1, -1)
      .split('|')
      .map((x) => x.trim());
    if (c[0]) current = c[0];
    if (current === target && c[1] === platform) return c;
  }
  throw new Error(`no row for ${target} on ${platform}`);
}

const README = [
  '# Title',
  '',
  'Before the table.',
  START,
  'old table',
  'old note',
  END,
  '',
  'After the table.',
  '',
].join('\n');

test("the page's table gives relative errors, original→clone below 1 MPKI, the paired ratio and the kernel's at each load", () => {
  const block = renderPage(parseResults(fixtureText));
  const [, , insns, i1, d1, l2, llc, branch, ratio, kernel, mix] = cells(block, 'memcached', 'skylake-sp');
  assert.equal(insns, '+1.0%');
  assert.equal(i1, '0.5→0.55');
  assert.equal(d1, '-5.0%');
  assert.equal(l2, '+5.0%');
  assert.equal(llc, '0.0123→0.01');
  assert.equal(branch, '0.0%');
  // Loads 500 (1.04) and 100 (0.97), lowest first.
  assert.equal(ratio, '0.97 1.04');
  // Only load 500 has the kernel's row (18 us against 20): a load without it has no ratio.
  assert.equal(kernel, '0.90');
  assert.equal(mix, '2.0 (alu)');
  // A target's other platforms leave the per-target columns blank.
  const g = cells(block, 'memcached', 'graviton2');
  assert.equal(g[0], '');
  assert.equal(g[3], '0.8→0.8');
  assert.equal(g[4], '+5.0%');
  assert.deepEqual(g.slice(8), ['', '', '']);
  assert.equal(cells(block, 'nginx', 'skylake-sp')[4], '+20.0%');
});

test('random geometries fold into one row: the mean size of the errors and the worst', () => {
  const block = renderPage(parseResults(fixtureText));
  // I1: +20% and -25%; D1 and L2 below 1 MPKI on both.
  const r = cells(block, 'memcached', '2 random');
  assert.deepEqual(r.slice(2, 8), ['+1.0%', '22.5/-25.0%', 'all < 1', 'all < 1', 'all < 1', '']);
  assert.throws(() => cells(block, 'memcached', 'random-7-0'), /no row/);
  assert.match(block, /Random geometries \(seed 7,/);
});

test("the README's tables: a row a target, its first platform and the random geometries in one cell", () => {
  const block = render(parseResults(fixtureText));
  const m = cells(block, 'memcached', 'skylake-sp');
  // insns, I1..branch on skylake-sp, then every random cache: I1 +20%, -25% (D1, L2, LLC < 1).
  assert.deepEqual(m.slice(2), [
    '+1.0%',
    '0.5→0.55',
    '-5.0%',
    '+5.0%',
    '0.0123→0.01',
    '0.0%',
    '22.5/-25.0%',
    '0.97 1.04',
    '2.0 (alu)',
  ]);
  assert.throws(() => cells(block, 'memcached', 'graviton2'), /no row/);
  assert.match(block, /\[docs\/fidelity\.md\]\(docs\/fidelity\.md\)/);
});

test('the server table: misses of those judged, the largest error over the loads, the call furthest off, exact counts', () => {
  const block = render(parseResults(fixtureText));
  const row = (target: string) =>
    block
      .split('\n')
      .find((l) => l.startsWith(`| ${target} `) && l.includes('='))!
      .slice(1, -1)
      .split('|')
      .map((x) => x.trim());
  // missed, saturation, p50 (+5% and -12% over two loads), p99, a call, disk, net, processes, threads.
  assert.deepEqual(row('nginx').slice(1), [
    '1 of 12',
    '-5.0%',
    '-12.0%',
    '+10.0%',
    '-10.0% read',
    '+2.0%',
    '0.0%',
    '5→4@400',
    '= 4–6',
  ]);
  assert.deepEqual(row('memcached').slice(1), ['0', '–', '+5.0%', '+10.0%', '–', '–', '0.0%', '–', '= 4']);
});

test('results kept from an earlier run name their own commit, date and seed', () => {
  const data = JSON.parse(fixtureText);
  data.results[0] = { ...data.results[0], commit: '1111111', date: '1999-12-31T00:00:00Z', randomSeed: 3 };
  const block = render(parseResults(JSON.stringify(data)));
  assert.match(block, /bench`: memcached at `1111111` on 1999-12-31; .* at `0000000` on 2000-01-02/);
  assert.match(block, /Random geometries \(seed 3, 7,/);
  data.results[0].date = 'yesterday';
  assert.throws(() => parseResults(JSON.stringify(data)), /results\[0\]\.date: expected an ISO date/);
});

test('the section and the page name the commit and date, the failed and missed targets; the page the stage times', () => {
  const block = renderPage(parseResults(fixtureText));
  assert.match(render(parseResults(fixtureText)), /commit `0000000` on 2000-01-02/);
  assert.match(block, /commit `0000000` on 2000-01-02/);
  assert.ok(
    block.split('\n').some((l) => /^\| memcached +\| +100 \| +10 \| +40 \| +50 \| +3 \| +1 \|$/.test(l)),
    block,
  );
  assert.match(block, /Fidelity targets met by memcached\./);
  assert.match(block, /nginx misses `sim\.skylake-sp\.D1\.mpki`\./);
  assert.match(block, /redis was not measured: the target exited at start/);
  // The README's section names who held and who was not measured; the misses are the page's.
  const section = render(parseResults(fixtureText));
  assert.match(section, /Fidelity targets met by memcached\./);
  assert.match(section, /redis was not measured: the target exited at start/);
  assert.ok(!section.includes('nginx misses'), section);
  assert.ok(!block.includes(START) && !block.includes(END));
});

test('the rewrite replaces what lies between the markers and nothing else', () => {
  const out = rewrite(README, 'new table');
  const before = README.slice(0, README.indexOf(START) + START.length);
  const after = README.slice(README.indexOf(END));
  assert.ok(out.startsWith(before));
  assert.ok(out.endsWith(after));
  assert.equal(out, `${before}\nnew table\n${after}`);
  assert.equal(rewrite(out, 'new table'), out);
  assert.throws(() => rewrite('# no markers\n', 'x'), TableError);
  assert.throws(() => rewrite(`${END}\n${START}\n`, 'x'), TableError);
  assert.throws(() => rewrite(`${README}${START}\n`, 'x'), TableError);
});

test('a malformed results file is refused, naming the field', () => {
  assert.throws(
    () => parseResults('{"date": '),
    (e) => e instanceof TableError && /not JSON/.test(e.message),
  );
  const data = JSON.parse(fixtureText);
  data.results[0].rows[1].clone = 'fast';
  assert.throws(
    () => parseResults(JSON.stringify(data)),
    (e) =>
      e instanceof TableError &&
      /results\[0\]\.rows\[1\]\.clone: expected a number or null, got "fast"/.test(e.message),
  );
  delete data.commit;
  data.results[0].rows[1].clone = 1;
  assert.throws(() => parseResults(JSON.stringify(data)), /commit: expected a string/);
  assert.throws(
    () => parseResults(JSON.stringify({ ...JSON.parse(fixtureText), results: [] })),
    /at least one target/,
  );
});

test('the script rewrites a README in place, and exits 2 with one line on a missing or malformed file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'twin-table-'));
  const readme = join(dir, 'README.md');
  const page = join(dir, 'fidelity.md');
  writeFileSync(readme, README);
  const run = (results: string) =>
    spawnSync(process.execPath, [SCRIPT, results, readme, page], { encoding: 'utf8' });

  const ok = run(FIXTURE);
  assert.equal(ok.status, 0, ok.stderr);
  const text = readFileSync(readme, 'utf8');
  assert.ok(
    text.startsWith('# Title\n\nBefore the table.\n') && text.endsWith(`${END}\n\nAfter the table.\n`),
  );
  assert.match(text, /\| memcached +\| skylake-sp +\| +\+1\.0% \|/);
  assert.match(text, /\[fidelity\.md\]\(fidelity\.md\)/);
  const pageText = readFileSync(page, 'utf8');
  assert.match(pageText, /^# Fidelity\n/);
  assert.match(pageText, /\| +\| graviton2 +\| +\+1\.0% \|/);
  assert.deepEqual(readdirSync(dir).sort(), ['README.md', 'fidelity.md']);

  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"date": "2000-01-01", "results": 3}');
  for (const path of [join(dir, 'missing.json'), bad]) {
    const r = run(path);
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!/\bat \S+:\d+/.test(r.stderr), r.stderr);
    assert.equal(readFileSync(readme, 'utf8'), text);
    assert.equal(readFileSync(page, 'utf8'), pageText);
  }
  assert.deepEqual(readdirSync(dir).sort(), ['README.md', 'bad.json', 'fidelity.md']);
});
