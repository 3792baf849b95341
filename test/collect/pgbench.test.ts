import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  parsePgbenchLog,
  pgbenchArgs,
  pgbenchResult,
  pgbenchScripts,
  statementKinds,
  statementsPerTx,
} from '../../src/collect/pgbench.js';
import { PgWireTally, tallyOps } from '../../src/collect/pgwire.js';
import { TwinError, Workload } from '../../src/model/index.js';

const FIXTURES = fileURLToPath(new URL('../../../test/collect/fixtures/', import.meta.url));
const fixture = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');

// pgbench 15's --show-script=tpcb-like and select-only, as it prints them.
const TPCB = `-- tpcb-like: <builtin: TPC-B (sort of)>
\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
`;
const SELECT_ONLY = `-- select-only: <builtin: select only>
\\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
`;
const builtin = (name: string) => ({ 'tpcb-like': TPCB, 'select-only': SELECT_ONLY })[name] ?? '';

test('statement kinds: first words of the SQL, meta-commands and comments left out', () => {
  assert.deepEqual(statementKinds(TPCB), ['begin', 'update', 'select', 'update', 'update', 'insert', 'end']);
  assert.deepEqual(statementKinds(SELECT_ONLY), ['select']);
  // A statement over several lines is one; a parenthesized one counts by its first word.
  assert.deepEqual(statementKinds('SELECT a\n  FROM t;\n(select 1);\n-- x;\n'), ['select', 'select']);
});

test('the scripts pgbench runs: TPC-B-like by default, -S, -b with a weight, -f files', () => {
  assert.deepEqual(pgbenchScripts(['-U', 'postgres', 'postgres'], builtin), [
    { kinds: statementKinds(TPCB), weight: 1 },
  ]);
  assert.deepEqual(pgbenchScripts(['-S'], builtin), [{ kinds: ['select'], weight: 1 }]);
  const mixed = pgbenchScripts(['-b', 'tpcb-like@1', '--builtin=select-only@3'], builtin);
  assert.deepEqual(
    mixed.map((s) => [s.kinds.length, s.weight]),
    [
      [7, 1],
      [1, 3],
    ],
  );
  assert.equal(statementsPerTx(mixed), (7 + 3) / 4);
  const files = pgbenchScripts(['-f', 'a.sql@2'], builtin, (p) =>
    p === 'a.sql' ? 'UPDATE t SET x = 1;' : '',
  );
  assert.deepEqual(files, [{ kinds: ['update'], weight: 2 }]);
  assert.throws(
    () => pgbenchScripts(['-f', 'empty.sql'], builtin, () => '\\set x 1\n'),
    (e) => e instanceof TwinError && /no SQL statement/.test(e.message),
  );
});

test("pgbench's per-transaction log and summary (captured from pgbench 15) as a load result", () => {
  const txs = parsePgbenchLog(fixture('pgbench-log.txt'), 'log');
  assert.equal(txs.length, 40);
  assert.ok(txs.every((t) => t.latencyUs !== null && t.latencyUs > 0 && t.script === 0));
  const scripts = [{ kinds: statementKinds(TPCB), weight: 1 }];
  const r = pgbenchResult(txs, scripts, 700, 0, fixture('pgbench-stdout.txt'));
  // A request is a statement: seven a transaction.
  assert.equal(r.requests, 7 * 40);
  assert.equal(r.sent, 7 * 40);
  assert.deepEqual(Object.fromEntries(r.ops.map((o) => [o.op, o.count])), {
    begin: 40,
    update: 120,
    select: 40,
    insert: 40,
    end: 40,
  });
  const lat = txs.map((t) => t.latencyUs!).sort((a, b) => a - b);
  assert.equal(r.latency_us.max, lat[lat.length - 1]);
  assert.equal(r.latency_us.p50, lat[19]);
  assert.ok(r.latency_us.p50 <= r.latency_us.p90 && r.latency_us.p90 <= r.latency_us.p99);
  assert.deepEqual(r.driver, { tps: 106.717537, latencyMeanMs: 2.807 });
  // A warm-up leaves the first transactions out.
  const later = pgbenchResult(txs, scripts, 700, 0.2, '');
  assert.ok(later.requests < r.requests && later.sent === r.sent);
  assert.equal(later.driver, undefined);
});

test('a log of 500,000 transactions (a few seconds of select-only near saturation) reads as one', () => {
  const txs = Array.from({ length: 500_000 }, (_, i) => ({
    script: 0,
    endUs: 1e6 + i * 10,
    latencyUs: 200 + (i % 100),
    skipped: false,
  }));
  const r = pgbenchResult(txs, [{ kinds: ['select'], weight: 1 }], 100_000, 1, '');
  assert.equal(r.sent, 500_000);
  // The first second's transactions (those that ended before 1 s after the first began) left out.
  assert.ok(r.requests > 400_000 && r.requests < 410_000, String(r.requests));
  assert.equal(r.latency_us.max, 299);
});

test('failed and skipped transactions are errors; a line that is no log line is bad input', () => {
  const txs = parsePgbenchLog(
    '0 1 1500 0 1796552062 532408\n0 2 failed 0 1796552062 600000\n1 1 skipped 0 1796552062 700000 9\n',
    'log',
  );
  const r = pgbenchResult(txs, [{ kinds: ['select', 'select'], weight: 1 }], 100, 0, '');
  assert.deepEqual(r.errors, { failed: 2, skipped: 2 });
  assert.equal(r.requests, 2);
  assert.throws(
    () => parsePgbenchLog('0 1 1500 0 1796552062 532408\ninterval 5 3 4\n', 'log.77'),
    (e) => e instanceof TwinError && /log\.77 line 2 does not parse/.test(e.message),
  );
});

test("pgbench's arguments: rate in transactions a second, the simple query mode, the workload's last", () => {
  const w = Workload.parse({
    protocol: 'postgres',
    driver: { name: 'pgbench', args: '-S -U postgres postgres' },
    preload: false,
    loads: [700],
    connections: 8,
  });
  const a = pgbenchArgs(w, 5432, { rate: 700, duration: 5, warmup: 1 }, 7, '/x/log');
  assert.deepEqual(a.slice(a.indexOf('-R'), a.indexOf('-R') + 4), ['-R', '100', '-T', '6']);
  assert.deepEqual(a.slice(a.indexOf('-M'), a.indexOf('-M') + 2), ['-M', 'simple']);
  assert.deepEqual(a.slice(-4), ['-S', '-U', 'postgres', 'postgres']);
  // So many requests, one at a time: one client, transactions enough.
  const v = pgbenchArgs(w, 5432, { rate: 700, duration: 5, maxRequests: 2100, maxInflight: 1 }, 7, '/x/log');
  assert.deepEqual(v.slice(v.indexOf('-c'), v.indexOf('-c') + 2), ['-c', '1']);
  assert.deepEqual(v.slice(v.indexOf('-t'), v.indexOf('-t') + 2), ['-t', '300']);
  assert.throws(() =>
    Workload.parse({
      protocol: 'postgres',
      driver: { name: 'pgbench', args: '-M prepared' },
      preload: false,
      loads: [1],
    }),
  );
  assert.throws(() =>
    Workload.parse({ protocol: 'postgres', preload: false, loads: [1], requests: [{ op: 'get', share: 1 }] }),
  );
});

test("the relay's tally of a captured pgbench conversation: each statement kind's replies", () => {
  const conns = JSON.parse(fixture('pgwire-tpcb.json')) as [string, string][][];
  const whole = conns.map((chunks) => {
    const t = new PgWireTally();
    for (const [dir, hex] of chunks) (dir === 'c' ? t.client : t.server).call(t, Buffer.from(hex, 'hex'));
    return t;
  });
  const ops = Object.fromEntries(tallyOps(whole).map((o) => [o.op, o]));
  // pgbench's set-up connection and its one client: two start-ups of the same reply.
  assert.equal(ops.startup.count, 2);
  assert.equal(ops.startup.resp_sizes.length, 1);
  assert.deepEqual(ops.begin.resp_sizes, [[17, 2]]);
  assert.deepEqual(ops.update.resp_sizes, [[20, 6]]);
  assert.deepEqual(ops.insert.resp_sizes, [[22, 2]]);
  assert.deepEqual(ops.end.resp_sizes, [[18, 2]]);
  // The script's two SELECTs, pgbench's count of branches (63) and partition query (120).
  assert.equal(ops.select.count, 4);
  assert.ok(ops.select.resp_sizes.some(([s]) => s === 63) && ops.select.resp_sizes.some(([s]) => s === 120));
  assert.equal(ops.update.req_bytes / 6 > 70, true);
  // Byte by byte, the same tally.
  const bytes = conns.map((chunks) => {
    const t = new PgWireTally();
    for (const [dir, hex] of chunks)
      for (const b of Buffer.from(hex, 'hex')) (dir === 'c' ? t.client : t.server).call(t, Buffer.from([b]));
    return t;
  });
  assert.deepEqual(tallyOps(bytes), tallyOps(whole));
});
