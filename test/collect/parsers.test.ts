import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { bpftraceScript, markFds, parseBpftraceJson } from '../../src/collect/bpftrace.js';
import { fitLocks, withoutLatchCalls } from '../../src/profile/places.js';
import type { RequestType } from '../../src/model/index.js';
import { parseCachegrind, countersFrom } from '../../src/collect/cachegrind.js';
import { parseStat, parseSchedstat, processTree, cpuNs, cpuTicks } from '../../src/collect/proc.js';
import { parseUnistd, syscallName } from '../../src/collect/syscalls.js';

const typeNamed = (op: string): RequestType => ({
  op,
  share: 0,
  requestBytesMean: 0,
  responseSizes: [[1, 1]],
});

const fixture = (f: string) =>
  readFileSync(new URL(`../../../test/collect/fixtures/${f}`, import.meta.url), 'utf8');

test('bpftrace JSON of a real memcached run: calls by thread and name, socket I/O sizes', () => {
  const t = parseBpftraceJson(fixture('bpftrace-memcached.json'));
  // Thread 17915 is a worker: 5 reads, 3 sendmsg, 6 epoll_wait; 17921 sleeps in clock_nanosleep.
  const w = t.byThread.get(17915)!;
  assert.equal(w.pid, 17913);
  assert.equal(w.calls.get('read'), 5);
  assert.equal(w.calls.get('sendmsg'), 3);
  assert.equal(w.calls.get('epoll_wait'), 6);
  assert.equal(t.byThread.get(17921)!.calls.get('clock_nanosleep'), 41);
  // /proc/17913/fd said 23 and 24 were sockets while the client was connected, 6 a pipe.
  markFds(t, new Map([[17913, { sockets: new Set([23, 24]), others: new Set([6]) }]]));
  const sock = t.io.filter((e) => e.socket && e.tid === 17915);
  assert.equal(sock.find((e) => e.call === 'read' && e.bytes === 25)?.count, 3);
  assert.equal(sock.find((e) => e.call === 'sendmsg')?.bytes, 31);
  // The 8-byte read of the notification pipe (fd 6) is on neither a socket nor a file.
  const pipe = t.io.find((e) => e.call === 'read' && e.bytes === 8 && e.tid === 17915)!;
  assert.deepEqual([pipe.socket, pipe.file], [false, false]);
});

test("bpftrace JSON of a real PostgreSQL run's waits and calls by place in a TPC-B-like transaction", () => {
  // pgbench at 340 transactions a second, 8 connections, scale 1, for 4 s.
  const t = parseBpftraceJson(fixture('bpftrace-postgres-places.json'));
  assert.equal(t.places.length, 7);
  const { calls, ...branch } = t.places[4];
  assert.deepEqual(branch, {
    requests: 1346,
    waited: 303,
    waitNs: 444337404,
    holds: 1346,
    holdNs: 985036339,
  });
  // Its waits are on a latch (epoll_wait, then the signal's read); the commit (the last place)
  // makes the fdatasync and the log's write, and gives the locks: no hold of its own.
  assert.equal(calls.get('epoll_wait'), 451);
  const commit = t.places[6];
  assert.deepEqual([commit.requests, commit.holds, commit.calls.get('fdatasync')], [1354, 0, 1346]);
  // The branch's update (the third) waits on one lock, the tellers' (the second) on about 10
  // (8 measured); the accounts' (the first, 100,000 rows) waited 5 times in 1,346: no section.
  const kinds = ['begin', 'update', 'select', 'update', 'update', 'insert', 'end'];
  const window = { rps: 2380, windowS: 4, sent: 7 * 1346, places: t.places };
  const sections = fitLocks([window], kinds, kinds.map(typeNamed));
  assert.deepEqual(
    sections.map((l) => [l.op, l.nth, l.release, l.ways, l.wait]),
    [
      ['update', 2, 'end', 8, 'latch'],
      ['update', 3, 'end', 1, 'latch'],
    ],
  );
  // Both sleep on latches (451 epoll_wait and 140 futex calls in the branch's update, 64 and
  // 16 in the tellers'). Each wake read its signal and was sent by a kill: the replay keeps
  // the rest of those calls.
  const kept = withoutLatchCalls(
    [
      { name: 'read', perReq: 0.06 },
      { name: 'kill', perReq: 0.054 },
      { name: 'lseek', perReq: 1.44 },
    ],
    [window],
    [3, 4],
  );
  assert.deepEqual(
    kept.replay.map((c) => [c.name, c.perReq]),
    [
      ['read', 0.0053],
      ['lseek', 1.44],
    ],
  );
  assert.deepEqual(
    kept.windows[0].places.map((p) => p.calls.get('read') ?? 0),
    [0, 0, 0, 0, 0, 0, 0],
  );
});

test('bpftrace JSON of real maps: on a file or anonymous, with their lengths', () => {
  // A traced shell ran cat three times: the loader maps each library's parts from its file
  // and its own memory anonymous (18 and 4 maps a run).
  const t = parseBpftraceJson(fixture('bpftrace-maps.json'));
  const of = (tid: number, file: boolean) =>
    t.maps!.filter((m) => m.tid === tid && m.file === file).reduce((a, m) => a + m.count, 0);
  for (const tid of [28047, 28048, 28049]) assert.deepEqual([of(tid, true), of(tid, false)], [18, 4]);
  assert.ok(t.maps!.some((m) => m.tid === 28047 && !m.file && m.bytes === 139264));
  assert.ok(bpftraceScript([1]).includes('(args->flags & 32) == 0'));
});

test("bpftrace JSON of a real Apache's calls after each reply: unmap, log line and close", () => {
  // Debian's apache2 (prefork, one child) sent 28 replies by writev, 10 a second.
  const t = parseBpftraceJson(fixture('bpftrace-apache-after.json'));
  const after = (call: string, send: number) =>
    t.after!.filter((a) => a.call === call && a.sends & send).reduce((n, a) => n + a.count, 0);
  const WRITEV = 2;
  assert.equal(after('munmap', WRITEV), 28);
  assert.equal(after('write', WRITEV), 28);
  assert.ok(after('close', WRITEV) >= 28);
  // None of its opens and stats: they come before the reply.
  assert.equal(after('openat', WRITEV) + after('newfstatat', WRITEV), 0);
});

test('the tracer follows places in a cycle only when given one', () => {
  assert.ok(!bpftraceScript([1]).includes('@lk_'));
  const s = bpftraceScript([1], 7);
  assert.ok(s.includes('unroll(6)') && s.includes('% 7'));
});

test('bpftrace output without results is an error, a malformed line too', () => {
  assert.throws(() => parseBpftraceJson(''), /no results/);
  assert.throws(() => parseBpftraceJson('{"type": "map", "data": {'), /malformed/);
});

test('cachegrind summary of a real run and the rates derived from it', () => {
  const t = parseCachegrind(fixture('cachegrind.out.tiny'));
  assert.equal(t.Ir, 1590224);
  assert.equal(t.Bcm, 3076);
  assert.equal(t.Bim, 145);
  const c = countersFrom(t, 2, 'skylake-sp');
  assert.equal(c.insnsPerReq, 795112);
  assert.ok(Math.abs(c.branchMispredictRate - (3076 + 145) / (224581 + 279)) < 1e-12);
  assert.ok(Math.abs(c.I1MissRate - 1077 / 1590224) < 1e-12);
  assert.throws(() => parseCachegrind('events: Ir\n'), /no events or summary/);
});

test('/proc stat: fields after a command name with spaces and parentheses', () => {
  const real = parseStat(fixture('proc-stat.txt'));
  assert.ok(real.threads >= 1 && real.ppid > 0);
  const s = parseStat('123 (a (weird) name) S 7 123 123 0 -1 4194560 100 0 0 0 42 17 0 0 20 0 5 0 1000 0 0');
  assert.deepEqual(s, { ppid: 7, utime: 42, stime: 17, threads: 5 });
  assert.equal(parseSchedstat('377562 0 2\n'), 377562);
});

test('process tree and CPU time of a real process with a child', async () => {
  const child = spawn('bash', ['-c', 'sleep 5 & for i in $(seq 1 200000); do :; done; wait'], {
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 300));
  const tree = processTree(child.pid!);
  assert.equal(tree[0], child.pid);
  assert.ok(tree.length >= 2, `expected bash and its sleep, got ${tree}`);
  assert.ok(cpuNs(tree).ns > 0);
  child.kill('SIGKILL');
  for (const p of tree.slice(1))
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
});

test("a thread's ticks tell its kernel time from its own: a copy a byte a call against a shell's loop", async () => {
  // dd's every byte is a read and a write (mostly the kernel's time); the loop makes no call.
  const share = async (cmd: string) => {
    const child = spawn('sh', ['-c', cmd], { stdio: 'ignore' });
    const before = cpuTicks([child.pid!]);
    await new Promise((r) => setTimeout(r, 1500));
    const after = cpuTicks([child.pid!]);
    child.kill('SIGKILL');
    let user = 0;
    let sys = 0;
    for (const [t, x] of after) {
      user += x.user - (before.get(t)?.user ?? 0);
      sys += x.sys - (before.get(t)?.sys ?? 0);
    }
    assert.ok(user + sys >= 50, `${cmd}: ${user + sys} ticks in 1.5 s`);
    return sys / (user + sys);
  };
  const copy = await share('exec dd if=/dev/zero of=/dev/null bs=1 count=100000000');
  const loop = await share('while :; do :; done');
  assert.ok(copy > 0.4, `dd's system share ${copy.toFixed(2)}`);
  assert.ok(loop < 0.1, `the loop's system share ${loop.toFixed(2)}`);
});

test('system call table from the kernel headers', () => {
  assert.equal(parseUnistd('#define __NR_read 0\n#define __NR_sendmsg 46\n').get(46), 'sendmsg');
  assert.equal(syscallName(0), 'read');
  assert.equal(syscallName(232), 'epoll_wait');
});
