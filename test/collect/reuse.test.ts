/* twinreuse, Twin's own Valgrind tool: every LRU geometry's misses from one run.
 *
 * The parser is tested on a captured output: the tool run on a program that walks a 48 KiB
 * ring of lines ten times (for (p < 10) for (i < 768) a[64 i] += …, between two writes), whose
 * data lines fill 12 ways of 64 sets exactly. The tool is then checked against cachegrind, Valgrind's own
 * cache simulator, on a real program (sort) at the shipped platforms and at geometries drawn
 * at random: the same misses to within a fraction of a percent at the L1s. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  combineParts,
  combineReuse,
  parseReuse,
  platformMisses,
  REUSE_LIB,
  reuseMisses,
  reuseTotals,
  scaleReuse,
  servingReuse,
  type ReuseRun,
} from '../../src/collect/reuse.js';
import { parseCachegrind } from '../../src/collect/cachegrind.js';
import { measureReuse } from '../../src/collect/cpu.js';
import { SWEEP, sweepGeometry } from '../../src/collect/sweep.js';
import { launchSpecFor } from '../../src/collect/target.js';
import { resolveWorkload } from '../../src/cli/common.js';
import { loadPlatform, randomPlatform } from '../../src/collect/platforms.js';
import { REUSE_CURVE_L1, REUSE_CURVE_LL, reuseCurves, tableMisses } from '../../src/model/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const walk = parseReuse(readFileSync(join(ROOT, 'test/collect/fixtures/twinreuse-walk.txt'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'twin-reuse-'));
after(() => rmSync(work, { recursive: true, force: true }));

test("the tool's output parses: instructions, and each stream's set counts", () => {
  assert.equal(walk.instructions, 158705);
  assert.deepEqual(
    walk.threads.map((t) => [t.id, t.instructions, t.io, t.syscalls]),
    [[1, 158705, 4, 61]],
  );
  assert.deepEqual(walk.branches, { cond: 33291, condMisses: 3235, indirect: 292, indirectMisses: 157 });
  assert.deepEqual(
    Object.fromEntries(Object.entries(walk.streams).map(([s, v]) => [s, [v.lo, v.hi, v.counts.length]])),
    { I: [2, 11, 10], D: [2, 11, 10], U: [6, 17, 12], UI: [6, 17, 12], US: [6, 17, 12] },
  );
  assert.throws(() => parseReuse('twinreuse 1\n'), /another version/);
  assert.throws(() => parseReuse('twinreuse 4\ninstructions 5\n'), /bootstrap/);
  assert.throws(() => parseReuse('twinreuse 3\ninstructions 5\n'), /no thread/);
  assert.throws(
    () =>
      parseReuse(
        'twinreuse 3\ninstructions 5\nthread 1 instructions 5 io 0 syscalls 0\nstream I 2 3\n2 1 2\n',
      ),
    /unreadable/,
  );
});

/** The tool's counts of the C program `src`, compiled at `opt` as `name`, run once. */
function underTool(src: string, name: string, opt: string): ReuseRun {
  const bin = join(work, name);
  assert.equal(spawnSync('cc', [opt, '-o', bin, src]).status, 0);
  const out = join(work, `${name}.out`);
  const r = spawnSync('valgrind', ['--tool=twinreuse', `--out-file=${out}`, bin], {
    env: { ...process.env, VALGRIND_LIB: REUSE_LIB },
  });
  assert.equal(r.status, 0, r.stderr?.toString());
  return parseReuse(readFileSync(out, 'utf8'));
}

test("the tool counts a thread's instructions from its send on a socket to its next look for work", () => {
  // A request read from a socket pair, a file's write, 1,000 steps of work, the reply sent,
  // 3,000 steps after it, a receive that finds nothing, 2,000 steps, then the next request:
  // a thousand times.
  const src = join(work, 'after.c');
  writeFileSync(
    src,
    `#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void)
{
    int sv[2], null = open("/dev/null", O_WRONLY);
    char c = 'x';
    volatile unsigned long s = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || null < 0)
        return 1;
    for (int r = 0; r < 1000; r++) {
        if (write(sv[1], &c, 1) != 1 || read(sv[0], &c, 1) != 1 || write(null, &c, 1) != 1)
            return 1;
        for (int i = 0; i < 1000; i++)
            s += i;
        if (write(sv[0], &c, 1) != 1)
            return 1;
        for (int i = 0; i < 3000; i++)
            s += i;
        if (recv(sv[0], &c, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
            return 1;
        for (int i = 0; i < 2000; i++)
            s += i;
        if (read(sv[1], &c, 1) != 1)
            return 1;
    }
    return 0;
}
`,
  );
  const run = underTool(src, 'after', '-O1');
  const after = run.threads[0].after!;
  // After the reply's write (bit 1): the 3,000 steps a request up to the receive that found
  // nothing, half the thread's steps, which are nearly all its instructions; the file's write
  // starts nothing (else the 1,000 steps before the reply would count too: 0.67).
  const share = after[1] / run.threads[0].instructions;
  assert.ok(Math.abs(share - 0.5) < 0.03, `after the reply: ${share} of the instructions`);
  assert.deepEqual(
    after.flatMap((n, m) => (n && m !== 1 ? [m] : [])),
    [],
  );
  assert.deepEqual(servingReuse(run).after, after);
});

test('the tool counts the loads whose address came from a load before, by how many loads back', () => {
  // 100,000 steps of one pointer chase, 100,000 loads summing an array, 100,000 loads of four
  // chases taken in turn, over one 4 MiB cycle of lines.
  const src = join(work, 'chase.c');
  writeFileSync(
    src,
    `#include <stdint.h>
#include <stdlib.h>
volatile uint64_t sink;
int main(void)
{
    size_t n = 1 << 16;
    uint64_t *a = malloc(n * 64), s = 0, *p = a, *q[4];
    if (!a)
        return 1;
    for (size_t i = 0; i < n; i++)
        a[i * 8] = (uint64_t)(uintptr_t)&a[((i * 7919 + 1) % n) * 8];
    for (int i = 0; i < 100000; i++)
        p = (uint64_t *)(uintptr_t)*p;
    for (size_t i = 0; i < 100000; i++)
        s += a[(i % n) * 8];
    for (int k = 0; k < 4; k++)
        q[k] = &a[k * 1000 * 8];
    for (int i = 0; i < 25000; i++)
        for (int k = 0; k < 4; k++)
            q[k] = (uint64_t *)(uintptr_t)*q[k];
    sink = s ^ (uintptr_t)p ^ (uintptr_t)q[0] ^ (uintptr_t)q[3];
    return 0;
}
`,
  );
  const chase = underTool(src, 'chase', '-O2').threads[0].chase!;
  assert.equal(chase.length, 16);
  const near = (got: number, want: number, what: string) =>
    assert.ok(Math.abs(got - want) < 0.03 * want, `${what}: ${got} loads, expected ${want}`);
  near(chase[0], 100000, 'a load back (the chase)');
  near(chase[3], 100000, 'four loads back (the four chases)');
  // The array's loads and the rest: start-up's few.
  const rest = chase.reduce((a, c) => a + c, 0) - chase[0] - chase[3];
  assert.ok(rest < 10000, `${rest} other loads chased`);
});

test('a 48 KiB ring of lines fits 12 ways of 64 sets and misses at every pass with 11', () => {
  const at = (kib: number, ways: number) => reuseMisses(walk, 'D', kib * 1024, ways)!;
  const passes = 10;
  const lines = 768;
  // 12 ways: the ring's first pass (and the program's start-up) alone: the later passes hit.
  assert.ok(at(48, 12) < 0.5 * (passes - 1) * lines, `${at(48, 12)} misses at 48 KiB, 12 ways`);
  // 11 ways: every pass after the first misses every line as well.
  assert.ok(at(44, 11) >= (passes - 1) * lines + at(48, 12), `${at(44, 11)} misses at 44 KiB, 11 ways`);
  // Twice the sets, 6 ways (48 KiB again): the ring fits as well.
  assert.ok(Math.abs(at(48, 6) - at(48, 12)) < 0.1 * lines);
  // Misses never rise with ways at a set count, nor with sets at a number of ways.
  for (const s of ['I', 'D', 'U'] as const) {
    const { lo, hi } = walk.streams[s];
    for (let k = lo; k <= hi; k++)
      for (let a = 1; a < 16; a++) {
        const m = (kk: number, aa: number) => reuseMisses(walk, s, 64 * aa * 2 ** kk, aa)!;
        assert.ok(m(k, a + 1) <= m(k, a));
        if (k < hi) assert.ok(m(k + 1, a) <= m(k, a) * 1.05 + 16, `${s} ${k} ${a}`);
      }
  }
});

test('geometries the tool did not follow give null; pairs subtract and scale bin by bin', () => {
  assert.equal(reuseMisses(walk, 'D', 48 * 1024, 32), null);
  assert.equal(reuseMisses(walk, 'D', 3 * 64 * 16, 16), null);
  assert.equal(reuseMisses(walk, 'U', 1024, 16), null);
  const zero = combineReuse(walk, walk, -1);
  assert.equal(reuseMisses(zero, 'U', 1 << 20, 16), 0);
  const twice = combineReuse(walk, walk);
  assert.equal(reuseMisses(scaleReuse(twice, 2), 'I', 32768, 8), reuseMisses(walk, 'I', 32768, 8));
});

test(
  'the tool counts what cachegrind counts, at the shipped platforms and at random ones',
  { timeout: 300_000 },
  () => {
    // A real program on deterministic input: sort of 20,000 lines of pseudo-random text.
    let x = 12345;
    const letter = () => String.fromCharCode(97 + ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % 26));
    const input = join(work, 'in.txt');
    const lines = Array.from({ length: 20000 }, () => Array.from({ length: 40 }, letter).join(''));
    writeFileSync(input, lines.join('\n') + '\n');
    const prog = ['/usr/bin/sort', '-o', join(work, 'out.txt'), input];
    const vg = (args: string[], env = process.env) => {
      const r = spawnSync('valgrind', [...args, ...prog], { encoding: 'utf8', env });
      assert.equal(r.status, 0, `valgrind failed: ${r.stderr}`);
    };
    vg(['--tool=twinreuse', '--vex-guest-chase=no', `--out-file=${join(work, 'tr.out')}`], {
      ...process.env,
      VALGRIND_LIB: REUSE_LIB,
    });
    const counts = parseReuse(readFileSync(join(work, 'tr.out'), 'utf8'));
    const platforms = [
      loadPlatform('skylake-sp'),
      loadPlatform('graviton2'),
      randomPlatform(7, 0),
      randomPlatform(7, 1),
    ];
    for (const p of platforms) {
      const predicted = platformMisses(counts, p);
      for (const [level, ll] of [
        ['L2', p.L2],
        ['LLC', p.LLC],
      ] as const) {
        const out = join(work, `cg.${p.name}.${level}`);
        vg([
          '--tool=cachegrind',
          '--cache-sim=yes',
          '--branch-sim=yes',
          '--vex-guest-chase=no',
          `--cachegrind-out-file=${out}`,
          `--I1=${p.I1.size},${p.I1.assoc},64`,
          `--D1=${p.D1.size},${p.D1.assoc},64`,
          `--LL=${ll.size},${ll.assoc},64`,
        ]);
        const t = parseCachegrind(readFileSync(out, 'utf8'));
        const close = (what: string, got: number | null, want: number, share: number) =>
          assert.ok(
            got !== null && Math.abs(got - want) <= share * want + 20,
            `${p.name} ${what}: twinreuse ${got}, cachegrind ${want}`,
          );
        close('I1', predicted.I1, t.I1mr, 0.005);
        // The branches are cachegrind's; its predictors are the tool's own (per thread), and on
        // a program of one thread they mispredicted within 0.1% of cachegrind's.
        close('conditional branches', counts.branches.cond, t.Bc, 0.005);
        close('indirect branches', counts.branches.indirect, t.Bi, 0.005);
        close('conditional mispredictions', counts.branches.condMisses, t.Bcm, 0.05);
        close('indirect mispredictions', counts.branches.indirectMisses, t.Bim, 0.05);
        close('D1', predicted.D1, t.D1mr + t.D1mw, 0.005);
        // The tool's last level sees every access, not the L1s' misses alone.
        close(level, predicted[level], t.ILmr + t.DLmr + t.DLmw, 0.03);
      }
    }
  },
);

test('each thread is counted apart, and with --threads=serving a thread that never reads or writes feeds no cache', () => {
  // The main thread writes a byte 200 times; a second thread walks 1 MiB ten times, with
  // no system call, as a server's timed background thread does its work.
  const src = join(work, 'threads.c');
  writeFileSync(
    src,
    `#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>
static char ring[1 << 20];
static void *walk(void *arg) {
  for (int p = 0; p < 10; p++)
    for (int i = 0; i < (1 << 20); i += 64) ring[i] += (char)p;
  return arg;
}
int main(void) {
  pthread_t t;
  int fd = open("/dev/null", O_WRONLY);
  pthread_create(&t, 0, walk, 0);
  for (int i = 0; i < 200; i++) write(fd, ring, 1);
  pthread_join(t, 0);
  return ring[64] == 99;
}
`,
  );
  const exe = join(work, 'threads');
  const cc = spawnSync('gcc', ['-O1', '-pthread', '-o', exe, src], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const run = (threads: string) => {
    const out = join(work, `threads.${threads}`);
    const r = spawnSync('valgrind', ['--tool=twinreuse', `--threads=${threads}`, `--out-file=${out}`, exe], {
      encoding: 'utf8',
      env: { ...process.env, VALGRIND_LIB: REUSE_LIB },
    });
    assert.equal(r.status, 0, `valgrind failed: ${r.stderr}`);
    return parseReuse(readFileSync(out, 'utf8'));
  };
  const all = run('all');
  const serving = run('serving');
  const walker = (r: ReturnType<typeof parseReuse>) => r.threads.find((t) => t.id === 2)!;
  const main = (r: ReturnType<typeof parseReuse>) => r.threads.find((t) => t.id === 1)!;
  assert.equal(all.threads.length, 2);
  assert.equal(walker(all).io, 0);
  assert.ok(main(all).io >= 200, `main thread: ${main(all).io} read and write calls`);
  // The walk misses every line of every pass in a 32 KiB L1: 16,384 lines ten times.
  const walkLines = 10 * (1 << 14);
  assert.ok(reuseMisses(walker(all), 'D', 32768, 8)! >= walkLines);
  // Served alone, the walker still counts its instructions, but no access.
  assert.ok(Math.abs(walker(serving).instructions / walker(all).instructions - 1) < 0.01);
  assert.equal(reuseMisses(walker(serving), 'D', 32768, 8), 0);
  assert.equal(reuseMisses(walker(serving), 'U', 1 << 20, 16), 0);
  assert.ok(reuseMisses(serving, 'D', 32768, 8)! < walkLines / 10);
  // The sum over threads is the run's; the serving threads' sum is the main thread's.
  assert.equal(all.instructions, main(all).instructions + walker(all).instructions);
  assert.equal(servingReuse(all).instructions, main(all).instructions);
});

test("a forked process counts its own work alone, not its parent's before the fork", () => {
  // The parent walks 1 MiB twenty times, then forks a child that walks it once: summed over a
  // run's processes, the parent's walk must count once (a server that forks a process per
  // connection would otherwise count its start-up again in each).
  const src = join(work, 'fork.c');
  writeFileSync(
    src,
    `#include <sys/wait.h>
#include <unistd.h>
static char ring[1 << 20];
static void walk(int passes) {
  for (int p = 0; p < passes; p++)
    for (int i = 0; i < (1 << 20); i += 64) ring[i] += (char)p;
}
int main(void) {
  walk(20);
  pid_t c = fork();
  if (c == 0) {
    walk(1);
    write(1, ring, 0);
    _exit(0);
  }
  waitpid(c, 0, 0);
  return ring[64] == 99;
}
`,
  );
  const exe = join(work, 'fork');
  const cc = spawnSync('gcc', ['-O1', '-o', exe, src], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const r = spawnSync(
    'valgrind',
    ['--tool=twinreuse', '--trace-children=yes', `--out-file=${join(work, 'fork.%p')}`, exe],
    { encoding: 'utf8', env: { ...process.env, VALGRIND_LIB: REUSE_LIB } },
  );
  assert.equal(r.status, 0, `valgrind failed: ${r.stderr}`);
  const runs = readdirSync(work)
    .filter((f) => /^fork\.\d+$/.test(f))
    .map((f) => parseReuse(readFileSync(join(work, f), 'utf8')))
    .sort((a, b) => b.instructions - a.instructions);
  assert.equal(runs.length, 2);
  const [parent, child] = runs;
  // The child's one pass of 16,384 lines, not the parent's twenty before it.
  assert.ok(
    child.instructions < parent.instructions / 10,
    `${child.instructions} against ${parent.instructions}`,
  );
  assert.ok(child.instructions > 1 << 14, `child: ${child.instructions} instructions`);
  assert.ok(
    child.threads[0].io >= 1 && child.threads[0].io < 5,
    `child: ${child.threads[0].io} read and write calls`,
  );
});

test('with --parts, each function of the prefix is counted apart, on the threads that feed the caches', () => {
  // twin_walk walks a 48 KiB ring of lines ten times and twin_spin runs an ALU loop, on the
  // thread that writes; twin_bg, on a thread that never does, walks 1 MiB.
  const src = join(work, 'parts.c');
  writeFileSync(
    src,
    `#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>
static char ring[48 << 10], big[1 << 20];
__attribute__((noinline)) void twin_walk(void) {
  for (int p = 0; p < 10; p++)
    for (int i = 0; i < (48 << 10); i += 64) ring[i] += (char)p;
}
__attribute__((noinline)) long twin_spin(long n) {
  long x = 1;
  for (long i = 0; i < n; i++) x = x * 3 + i;
  return x;
}
__attribute__((noinline)) void *twin_bg(void *arg) {
  for (int i = 0; i < (1 << 20); i += 64) big[i]++;
  return arg;
}
int main(void) {
  pthread_t t;
  int fd = open("/dev/null", O_WRONLY);
  write(fd, ring, 1);
  pthread_create(&t, 0, twin_bg, 0);
  pthread_join(t, 0);
  twin_walk();
  return twin_spin(100000) == 7;
}
`,
  );
  const exe = join(work, 'parts');
  const cc = spawnSync('gcc', ['-O1', '-g', '-pthread', '-o', exe, src], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const out = join(work, 'parts.out');
  const r = spawnSync(
    'valgrind',
    ['--tool=twinreuse', '--threads=serving', '--parts=twin_', `--out-file=${out}`, exe],
    { encoding: 'utf8', env: { ...process.env, VALGRIND_LIB: REUSE_LIB } },
  );
  assert.equal(r.status, 0, `valgrind failed: ${r.stderr}`);
  const run = parseReuse(readFileSync(out, 'utf8'));
  const walkPart = run.parts.get('twin_walk')!;
  const spin = run.parts.get('twin_spin')!;
  assert.ok(walkPart && spin, `parts: ${[...run.parts.keys()]}`);
  // The walk: 7,680 stores, each a miss in a 32 KiB L1 (768 lines in turn), none in 64 KiB.
  const walks = 10 * 768;
  assert.ok(Math.abs(reuseMisses(walkPart, 'D', 32768, 8)! - walks) <= 10);
  assert.ok(reuseMisses(walkPart, 'D', 65536, 8)! <= 768 + 10);
  // Its loop's conditional branch runs once a store; the ALU loop's instructions are its own.
  assert.ok(Math.abs(walkPart.branches.cond - walks - 10) <= 20, `${walkPart.branches.cond} branches`);
  assert.ok(spin.instructions >= 3 * 100000 && spin.instructions < 6 * 100000, `${spin.instructions}`);
  assert.equal(reuseMisses(spin, 'D', 32768, 8), 0);
  // The background thread's part neither counts nor feeds the caches.
  assert.equal(run.parts.get('twin_bg')?.instructions ?? 0, 0);
  // A part's counts are the run's too: differences of parts add up as the streams do.
  const twice = combineParts(run.parts, run.parts);
  assert.equal(twice.get('twin_walk')!.instructions, 2 * walkPart.instructions);
  assert.equal(combineParts(run.parts, run.parts, -1).get('twin_spin')!.instructions, 0);
});

test('the reuse curve of a table: the 48 KiB ring misses every pass below its size, and the curve never rises', () => {
  const c = reuseCurves(walk.streams);
  const d = (kib: number) => c.data.find((p) => p.bytes === kib << 10)!.missesPerReq;
  assert.ok(d(40) >= 9 * 768, `${d(40)} misses at 40 KiB`);
  assert.ok(d(48) < 0.5 * 9 * 768, `${d(48)} misses at 48 KiB`);
  assert.equal(c.data.length, REUSE_CURVE_L1.length + REUSE_CURVE_LL.length);
  assert.equal(c.code.length, REUSE_CURVE_L1.length);
  for (const curve of [c.data.slice(0, REUSE_CURVE_L1.length), c.code])
    curve.slice(1).forEach((p, k) => assert.ok(p.missesPerReq <= curve[k].missesPerReq * 1.05 + 16));
  assert.equal(tableMisses(walk.streams.D, 48 << 10, 12), reuseMisses(walk, 'D', 48 << 10, 12));
});

test('a scan of 4 MiB is sequential at the last levels and a pointer chase over the same lines is not', () => {
  // Two passes of each, taken as the difference of runs of three and of one (start-up and the
  // chase's set-up cancelled): a scan whose lines follow one another, interleaved with a copy's
  // destination, and a chase through a random cycle of the same 65,536 lines.
  const src = join(work, 'seq.c');
  writeFileSync(
    src,
    `#include <stdint.h>
#include <stdlib.h>
#define LINES 65536
static uint64_t a[LINES * 8], b[LINES * 8];
volatile uint64_t sink;
int main(int argc, char **argv) {
  int passes = atoi(argv[2]);
  uint64_t s = 0, x = 88172645463325252u;
  if (argv[1][0] == 'c') {
    for (uint64_t i = 0; i < LINES; i++) a[8 * i] = i;
    for (uint64_t i = LINES - 1; i > 0; i--) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      uint64_t j = x % i, t = a[8 * i];
      a[8 * i] = a[8 * j];
      a[8 * j] = t;
    }
    uint64_t p = 0;
    for (int k = 0; k < passes; k++)
      for (uint64_t i = 0; i < LINES; i++) p = a[8 * p];
    s = p;
  } else {
    for (int k = 0; k < passes; k++)
      for (uint64_t i = 0; i < LINES; i++) b[8 * i] = a[8 * i] + (uint64_t)k;
    s = b[8];
  }
  sink = s;
  return 0;
}
`,
  );
  const exe = join(work, 'seq');
  const cc = spawnSync('gcc', ['-O1', '-o', exe, src], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const run = (mode: string, passes: number) => {
    const out = join(work, `seq.${mode}${passes}`);
    const r = spawnSync('valgrind', ['--tool=twinreuse', `--out-file=${out}`, exe, mode, String(passes)], {
      encoding: 'utf8',
      env: { ...process.env, VALGRIND_LIB: REUSE_LIB },
    });
    assert.equal(r.status, 0, `valgrind failed: ${r.stderr}`);
    return parseReuse(readFileSync(out, 'utf8'));
  };
  for (const [mode, lo, hi] of [
    ['scan', 0.95, 1],
    ['chase', 0, 0.02],
  ] as const) {
    const two = combineReuse(run(mode, 3), run(mode, 1), -1);
    // Every access of a pass misses a 1 MiB cache (4 MiB, or twice that with the copy's).
    const data = reuseMisses(two, 'U', 1 << 20, 16)! - reuseMisses(two, 'UI', 1 << 20, 16)!;
    assert.ok(data >= 2 * 65536, `${mode}: ${data} data misses at 1 MiB`);
    const share = reuseMisses(two, 'US', 1 << 20, 16)! / data;
    assert.ok(share >= lo && share <= hi, `${mode}: ${share.toFixed(3)} of the misses sequential`);
  }
});

test('a snapshot (vgdb ... snapshot FILE) holds the counts so far: two of one run differ by the work between them alone, none of the start-up', async () => {
  // Five passes of a 48 KiB ring, "ready", a line read, five passes more. The snapshot is
  // taken while the program waits in read(): between it and the exit lie five warm passes,
  // all hits in 16 ways of 64 sets (the ring's 12 and what printf and read touch), all misses
  // in 11.
  const src = join(work, 'snap.c');
  writeFileSync(
    src,
    `#include <stdio.h>
#include <unistd.h>
static char a[768 * 64];
volatile char sink;
static void walk(void) { for (int p = 0; p < 5; p++) for (int i = 0; i < 768; i++) a[64 * i] += (char)p; }
int main(void) {
  char c;
  walk();
  printf("ready\\n");
  fflush(stdout);
  if (read(0, &c, 1) != 1) return 1;
  walk();
  sink = a[64];
  return 0;
}
`,
  );
  const exe = join(work, 'snap');
  const cc = spawnSync('gcc', ['-O1', '-o', exe, src], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const [out, snap] = [join(work, 'snap.exit'), join(work, 'snap.mid')];
  const child = spawn('valgrind', ['--tool=twinreuse', `--out-file=${out}`, exe], {
    env: { ...process.env, VALGRIND_LIB: REUSE_LIB },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await new Promise<void>((r) =>
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && r()),
  );
  const v = spawnSync('vgdb', [`--pid=${child.pid}`, 'snapshot', snap], { encoding: 'utf8' });
  assert.equal(v.status, 0, `vgdb failed: ${v.stderr}`);
  child.stdin.end('\n');
  assert.equal(await exited, 0);
  const [mid, end] = [snap, out].map((f) => parseReuse(readFileSync(f, 'utf8')));
  assert.ok(mid.instructions < end.instructions);
  const window = combineReuse(end, mid, -1);
  const at = (r: typeof window, kib: number, ways: number) => reuseMisses(r, 'D', kib * 1024, ways)!;
  // Before the snapshot lie the ring's first pass and the start-up, cold at 16 ways; after it
  // no pass of the ring misses there (the exit's own lines do), every one misses at 11.
  const [whole, after] = [at(end, 64, 16), at(window, 64, 16)];
  assert.ok(whole - after >= 768, `${whole} misses at 64 KiB, 16 ways, in all, ${after} after the snapshot`);
  assert.ok(after < 768 / 4, `${after} misses at 64 KiB, 16 ways, after the snapshot`);
  assert.ok(
    at(window, 44, 11) >= 5 * 768,
    `${at(window, 44, 11)} misses at 44 KiB, 11 ways, after the snapshot`,
  );
});

test("a twinreuse pair of a real server is one process's snapshots, and a process gone before them counts at exit", async () => {
  // memcached started by a shell that first runs a child of its own (`true`, under Valgrind
  // too, gone before the first mark): its counts come at exit in both runs, and the pair's
  // difference is memcached's requests alone, as without it.
  const w = resolveWorkload(join(ROOT, 'test/fixtures/memcached-short.yaml'), []).workload;
  const cmd = w.command!;
  const spec = (command: string) => launchSpecFor(w, work, command);
  const [plain, shell] = [
    await measureReuse(spec(cmd), w, 'serving'),
    await measureReuse(spec(`sh -c '/bin/true; exec ${cmd}'`), w, 'serving'),
  ];
  const insns = (c: typeof plain) => reuseTotals(c, sweepGeometry(SWEEP[0])).Ir;
  assert.ok(insns(plain) > 1000, `${insns(plain)} instructions a request`);
  assert.ok(
    Math.abs(insns(shell) / insns(plain) - 1) < 0.02,
    `${insns(shell)} instructions a request with the shell's child, ${insns(plain)} without`,
  );
});
