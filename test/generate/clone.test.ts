import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Profile, Workload, bodyAfter, parseWith } from '../../src/model/index.js';
import { generateClone } from '../../src/generate/index.js';
import { buildClone } from '../../src/generate/build.js';
import { capBins } from '../../src/generate/clone.js';
import { bodyPlan } from '../../src/synth/body.js';
import { chainSegments, segmentLayout } from '../../src/synth/layout.js';
import { emitChain } from '../../src/generate/chain.js';
import { cloneLaunchSpec } from '../../src/collect/target.js';
import { launchTarget } from '../../src/collect/target.js';
import { runLoad, totalErrors } from '../../src/collect/loadgen.js';
import { recordReplies } from '../../src/collect/pgwire.js';
import { cpuNs } from '../../src/collect/proc.js';
import { measureReuse } from '../../src/collect/cpu.js';
import { steadyCount } from '../../src/collect/observe.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'twin-gen-'));

/** A profile of a real server, as the tests' fixtures keep it. */
const fixtureProfile = (name: string) =>
  parseWith(
    Profile,
    JSON.parse(readFileSync(join(ROOT, `test/fixtures/profile-${name}.json`), 'utf8')),
    'profile',
  );

const raw: Record<string, unknown> = {
  memcached: {
    protocol: 'memcached',
    connections: 4,
    threads: 2,
    keys: 100,
    keySize: 16,
    preload: true,
    requests: [
      { op: 'get', share: 0.9 },
      { op: 'set', share: 0.1, valueSize: { min: 64, max: 512 } },
    ],
    loads: [300],
    duration: 1,
  },
  redis: {
    protocol: 'resp',
    connections: 4,
    threads: 2,
    keys: 100,
    keySize: 16,
    preload: true,
    requests: [
      { op: 'get', share: 0.9 },
      { op: 'set', share: 0.1, valueSize: { min: 64, max: 512 } },
    ],
    loads: [300],
    duration: 1,
  },
  nginx: {
    protocol: 'http',
    connections: 4,
    threads: 2,
    keys: 100,
    keySize: 16,
    preload: false,
    requests: [{ op: 'get', share: 1, path: '/index.html' }],
    loads: [300],
    duration: 1,
  },
};
const workloads = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, parseWith(Workload, v, k)]));

/** Builds the clone in `dir`, serves it 300 requests a second for a second without an error,
 *  and hands the load's result and the running clone to `check`. */
async function serveBriefly(
  dir: string,
  w: Workload,
  check: (
    r: Awaited<ReturnType<typeof runLoad>>,
    target: Awaited<ReturnType<typeof launchTarget>>,
  ) => void = () => {},
): Promise<void> {
  const target = await launchTarget(cloneLaunchSpec(buildClone(dir), w));
  try {
    const r = await runLoad(w, target.port, { rate: 300, duration: 1, warmup: 0.2, preload: w.preload });
    assert.equal(totalErrors(r), 0, JSON.stringify(r.errors));
    assert.ok(r.requests > 200);
    check(r, target);
  } finally {
    await target.stop();
  }
}

for (const name of Object.keys(workloads)) {
  test(
    `a clone generated from a real ${name} profile compiles with -Werror, answers every request with the profiled sizes, and has its threads`,
    { timeout: 60_000 },
    async () => {
      const p = fixtureProfile(name);
      const dir = join(tmp, name);
      generateClone(p, dir);
      await serveBriefly(dir, workloads[name], (r, target) => {
        for (const op of r.ops) {
          const want = p.requests.find((q) => q.op === op.op)!;
          const mean = (bins: [number, number][]) =>
            bins.reduce((a, [s, c]) => a + s * c, 0) / bins.reduce((a, [, c]) => a + c, 0);
          const got = mean(op.resp_sizes as [number, number][]);
          assert.ok(
            Math.abs(got - mean(want.responseSizes as [number, number][])) / got < 0.1,
            `${op.op}: mean response ${got}`,
          );
          for (const [s] of op.resp_sizes)
            assert.ok(
              want.responseSizes.some(([t]) => t === s) || want.responseSizes.length > 64,
              `${op.op}: size ${s} never profiled`,
            );
        }
        assert.equal(cpuNs(target.pids()).threads, p.skeleton.threads.length);
        assert.equal(target.pids().length, p.skeleton.processes);
      });
    },
  );
}

test(
  "a clone answers each key with the size its profile gives the key's number (memcached's key, an HTTP path), and the rest from the distribution",
  { timeout: 60_000 },
  async () => {
    const cases: [string, Workload][] = [
      ['memcached', workloads.memcached],
      [
        'nginx',
        parseWith(
          Workload,
          { ...(raw.nginx as object), requests: [{ op: 'get', share: 1, path: '/p/{key}.html' }] },
          'w',
        ),
      ],
    ];
    for (const [name, w] of cases) {
      const p = fixtureProfile(name);
      const get = p.requests.find((q) => q.op === 'get')!;
      // Even keys by their numbers, sizes the distribution never has; odd ones sampled.
      get.keySizes = Array.from({ length: 60 }, (_, k) => (k % 2 ? 0 : 3000 + 7 * k));
      const dir = join(tmp, `${name}-keys`);
      generateClone(p, dir);
      const target = await launchTarget(cloneLaunchSpec(buildClone(dir), w));
      try {
        const r = await runLoad(w, target.port, { rate: 300, duration: 1, warmup: 0.2, preload: w.preload });
        assert.equal(totalErrors(r), 0, JSON.stringify(r.errors));
        const sizes = r.ops.find((o) => o.op === 'get')!.key_sizes!;
        const even = sizes.flatMap((s, k) => (k % 2 === 0 && k < 60 && s !== 0 ? [[k, s]] : []));
        assert.ok(even.length > 10, `${name}: ${even.length} even keys measured`);
        for (const [k, s] of even) assert.equal(s, 3000 + 7 * k, `${name}: key ${k}`);
        const odd = sizes.filter((s, k) => (k % 2 === 1 || k >= 60) && s > 0);
        assert.ok(
          odd.every((s) => get.responseSizes.some(([t]) => t === s) || get.responseSizes.length > 64),
        );
      } finally {
        await target.stop();
      }
    }
  },
);

test(
  'maps of a file are replayed apart from anonymous ones, at their share, and the clone serves',
  { timeout: 60_000 },
  async () => {
    const p = fixtureProfile('nginx');
    // As Apache: a map of the file it sends, three of four on a file, and its unmap.
    p.kernel.replay = [
      ...p.kernel.replay.filter((c) => c.name !== 'mmap' && c.name !== 'munmap'),
      { name: 'mmap', perReq: 1, sizes: [[4096, 1]], fileShare: 0.75 },
      { name: 'munmap', perReq: 1 },
    ];
    for (const r of p.requests) delete r.replay;
    const dir = join(tmp, 'maps');
    generateClone(p, dir);
    const src = readFileSync(join(dir, 'clone.c'), 'utf8');
    assert.match(
      src,
      /\{ TWIN_SC_MMAP_FILE, 0\.7500, replay_sizes_\d+, 1, 0u, 0\.0, TWIN_STEP_REQUEST \}, \/\* mmap \*\//,
    );
    assert.match(
      src,
      /\{ TWIN_SC_MMAP, 0\.2500, replay_sizes_\d+, 1, 0u, 0\.0, TWIN_STEP_REQUEST \}, \/\* mmap \*\//,
    );
    // The ops name as many steps as the table holds.
    const n = Number(/replay_steps\[(\d+)\]/.exec(src)![1]);
    assert.equal(n, p.kernel.replay.length + 1);
    assert.ok(src.includes(`replay_steps, ${n}, `));
    await serveBriefly(dir, workloads.nginx);
  },
);

test(
  'a call made once a turn is one step at the share of requests that mark it, and the clone serves',
  { timeout: 60_000 },
  async () => {
    const p = fixtureProfile('redis');
    // As Redis with appendfsync always: its log written and synced once a turn, 0.3 calls a
    // request at the profiled loads for the 0.4 of requests (its sets) that need them.
    p.kernel.replay = [
      ...p.kernel.replay.filter((c) => c.name !== 'write'),
      { name: 'write', perReq: 0.3, sizes: [[300, 1]], turnMarks: 0.4 },
      { name: 'fdatasync', perReq: 0.3, turnMarks: 0.4, afterShare: 0 },
    ];
    for (const r of p.requests) delete r.replay;
    const dir = join(tmp, 'turns');
    generateClone(p, dir);
    const src = readFileSync(join(dir, 'clone.c'), 'utf8');
    assert.match(
      src,
      /\{ TWIN_SC_FDATASYNC, 0\.4000, NULL, 0, 0u, 0\.0, TWIN_STEP_TURN \}, \/\* fdatasync \*\//,
    );
    assert.match(src, /\{ TWIN_SC_WRITE_LOG, 0\.4000, replay_sizes_\d+, 1, 0u, 0\.0, TWIN_STEP_TURN \}/);
    // A mark's write is the call's scaled by its calls a mark (0.3 / 0.4): the bytes a request kept.
    assert.match(src, /replay_sizes_\d+\[1\] = \{ \{ 225u, 1u \} \};/);
    await serveBriefly(dir, workloads.redis);
  },
);

test("a type's marks that stand for one call each write the call's own sizes, not the mix's marks'", () => {
  const p = fixtureProfile('redis');
  p.kernel.replay = [
    ...p.kernel.replay.filter((c) => c.name !== 'write'),
    { name: 'write', perReq: 0.3, sizes: [[300, 1]], turnMarks: 0.4 },
  ];
  // The first type's requests each make a write and mark it (a commit's log write: a mark a
  // call), the others none; the mix's marks read as 0.75 of a write each.
  p.requests.forEach((r, i) => {
    r.replay = p.kernel.replay.map((c) =>
      c.name !== 'write' ? c : { ...c, perReq: i === 0 ? 1 : 0, turnMarks: i === 0 ? 1 : 0 },
    );
  });
  const dir = join(tmp, 'turn-types');
  generateClone(p, dir);
  const src = readFileSync(join(dir, 'clone.c'), 'utf8');
  assert.match(src, /replay_sizes_0_\d+\[1\] = \{ \{ 300u, 1u \} \};/);
  assert.match(
    src,
    /replay_steps_0\[[^]*?TWIN_SC_WRITE_LOG, 1\.0000, replay_sizes_0_\d+, 1, 0u, 0\.0, TWIN_STEP_TURN/,
  );
  // The other types keep the mix's table (their marks never come: 0 a request).
  assert.match(src, /replay_steps_1\[[^]*?TWIN_SC_WRITE_LOG, 0\.0000, replay_sizes_\d+, 1, 0u/);
});

test(
  "the body's part after the reply runs once the reply is sent, counted there by twinreuse",
  { timeout: 180_000 },
  async () => {
    const p = fixtureProfile('redis');
    // Half of the original's own work a request came after its reply (its write: bit 1).
    const body = p.body.original.insnsPerReq - p.body.skeleton!.insnsPerReq;
    p.body.original.afterInsnsPerReq = Array.from({ length: 16 }, (_, m) => (m === 1 ? body / 2 : 0));
    p.body.skeleton!.afterInsnsPerReq = new Array<number>(16).fill(0);
    assert.equal(bodyAfter(p), 512);
    const dir = join(tmp, 'after');
    generateClone(p, dir);
    assert.ok(readFileSync(join(dir, 'clone.c'), 'utf8').includes('.body_after = 512u,'));
    const w = parseWith(Workload, { ...(raw.redis as object), valgrindRequests: 300 }, 'w');
    const c = await measureReuse(cloneLaunchSpec(buildClone(dir), w), w, 'serving');
    // Its after-reply work: half the body's, and the skeleton's few instructions from its
    // send back to its next receive.
    const after = c.after![1];
    assert.ok(Math.abs(after - body / 2) < 0.2 * body, `${after} instructions after the reply, body ${body}`);
    assert.ok(c.instructions - after > body / 2, `${c.instructions} in all`);
  },
);

test('capping a size distribution keeps its mean', () => {
  const bins: [number, number][] = Array.from({ length: 1000 }, (_, i) => [100 + i, 1 + (i % 7)]);
  const mean = (b: [number, number][]) =>
    b.reduce((a, [s, c]) => a + s * c, 0) / b.reduce((a, [, c]) => a + c, 0);
  const capped = capBins(bins, 64);
  assert.ok(capped.length <= 65);
  assert.ok(Math.abs(mean(capped) - mean(bins)) < 0.5);
});

test(
  'resizing the body moves neither the runtime nor any other code segment in the cache sets',
  { timeout: 60_000 },
  () => {
    const p = parseWith(
      Profile,
      JSON.parse(readFileSync(join(ROOT, 'test/fixtures/profile-memcached.json'), 'utf8')),
      'profile',
    );
    const plan = bodyPlan(p);
    assert.ok(
      plan.segments.filter((r) => Math.round(r.lines) > 0).length >= 2,
      'the fixture has code segments',
    );
    // Every segment a few blocks longer, and a larger mix loop: the blocks before each later
    // segment grow.
    const grown: Profile = {
      ...p,
      knobs: {
        ...p.knobs,
        codeLines: plan.segments.map((r, i) => (r.lines ? Math.round(r.lines) + 7 * (i + 1) : 0)),
        bodyInsnsPerReq: plan.insnsPerReq + 500,
      },
    };
    const symbols = (q: Profile, name: string) => {
      const dir = join(tmp, name);
      generateClone(q, dir);
      const r = spawnSync('nm', ['-S', buildClone(dir)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      // Lines of `nm -S`: address, size (where known), type, name.
      const text = r.stdout
        .split('\n')
        .map((l) => l.split(' '))
        .filter((f) => f.length >= 3 && /^[tT]$/.test(f[f.length - 2]));
      const at = new Map(text.map((f) => [f[f.length - 1], parseInt(f[0], 16)]));
      const size = new Map(text.filter((f) => f.length === 4).map((f) => [f[3], parseInt(f[1], 16)]));
      return { at, size };
    };
    const a = symbols(p, 'layout-a');
    const b = symbols(grown, 'layout-b');
    for (const fn of ['conn_serve', 'bg_main', 'twin_main']) assert.equal(b.at.get(fn), a.at.get(fn), fn);
    const blocks = [...a.at.keys()].filter((s) => /^twin_code_\d+_blocks$/.test(s));
    assert.ok(blocks.length >= 2);
    for (const s of blocks) assert.equal(b.at.get(s)! % 16384, a.at.get(s)! % 16384, s);
    assert.ok(
      b.size.get('twin_code_0_blocks')! > a.size.get('twin_code_0_blocks')!,
      "the first segment's blocks grew",
    );
  },
);

test('the chain runs the code crowd groups the tuned plan has, whatever the plan before tuning had', () => {
  const p = parseWith(
    Profile,
    JSON.parse(readFileSync(join(ROOT, 'test/fixtures/profile-memcached.json'), 'utf8')),
    'profile',
  );
  const base = bodyPlan(p);
  const off = { ...base, codeCrowd: [] };
  const on = { ...base, codeCrowd: [{ lines: 5, stride: 16384, loadsPerReq: 3 }] };
  const tuned = chainSegments(on, undefined, off).filter((s) => s.stride);
  assert.deepEqual(
    tuned.map((s) => [s.name, s.loadsPerReq, s.offset]),
    [['twin_code_conflict_0', 3, 19 * 64]],
  );
  assert.equal(
    chainSegments(off, undefined, on).find((s) => s.stride),
    undefined,
  );
});

test("code segments fill the sets the skeleton's hot code leaves room in, and no more", () => {
  const count = (layout: number[][], weights: number[], period: number) => {
    const sets = new Array<number>(period).fill(0);
    layout.forEach((slots, k) => slots.forEach((l) => (sets[l % period] += weights[k])));
    return sets;
  };
  // The skeleton holds 7 hot lines in each of sets 0 to 15 and 2 in each of the others.
  const outside = Array.from({ length: 64 }, (_, i) => (i < 16 ? 7 : 2));
  const segs = [
    { lines: 30, loadsPerReq: 60 },
    { lines: 129, loadsPerReq: 67 },
    { lines: 269, loadsPerReq: 2.8 },
  ];
  const layout = segmentLayout(segs, outside);
  layout.forEach((slots, k) => assert.equal(slots.length, segs[k].lines, `segment ${k} holds its lines`));
  // The warm segments (a line run every other request or more often) leave sets 0 to 15 alone,
  // and no set of the 32 KiB 8-way L1 holds more than its ways.
  const warm = count(layout.slice(0, 2), [1, 1], 64);
  assert.deepEqual(warm.slice(0, 16), new Array(16).fill(0));
  assert.ok(
    warm.every((x, i) => x + outside[i] <= 8),
    `sets ${warm.map((x, i) => x + outside[i]).join(' ')}`,
  );
  // Nor one of the 64 KiB 4-way L1's 256 more than its 4 (the skeleton spread evenly).
  assert.ok(count(layout.slice(0, 2), [1, 1], 256).every((x, i) => x + outside[i % 64] / 4 <= 4));
  // The cold one (a line run once in a hundred requests) is laid end to end.
  const cold = layout[2];
  assert.ok(
    cold.every((l, j) => j === 0 || l === (cold[j - 1] + 1) % 256),
    'the cold segment has no gaps',
  );
  // No block lies more than a 4 KiB period past the last; where every set is full, a warm
  // segment is laid end to end too (redis's clone: one that skipped to the least filled line
  // spread 2,652 lines over 17.8 MB).
  const gaps = (slots: number[]) => slots.slice(1).map((l, j) => (l - slots[j] - 1 + 256) % 256);
  assert.ok(layout.every((slots) => gaps(slots).every((g) => g < 64)));
  const [full] = segmentLayout([{ lines: 300, loadsPerReq: 300 }], new Array(64).fill(9));
  assert.deepEqual(gaps(full), new Array(299).fill(0));
  // The conflict segment's set counts as occupied: a hot segment of 7 x 64 lines, with 4 lines
  // there, leaves that set with one line of its own less.
  const [c] = segmentLayout([{ lines: 7 * 64, loadsPerReq: 7 * 64 }], undefined, [{ set: 19, lines: 4 }]);
  assert.equal(count([c], [1], 64)[19], 3);
  // Each block after another, in walk order: the emitted chain holds its gaps.
  const chain = emitChain([{ name: 'twin_code_0', lines: 3, loadsPerReq: 3, slots: [5, 9, 10] }]);
  assert.match(
    chain,
    /\.skip 320, 0xcc[^]*\.Lb%=_0:[^]*\.skip 192, 0xcc\\n\.Lb%=_1:[^]*\.p2align 6, 0xcc\\n\.Lb%=_2:/,
  );
});

/** Bytes a process has written with write(2) and its kin (`wchar` of /proc/PID/io). */
const writtenBytes = (pid: number): number =>
  Number(/^wchar: (\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
const parentOf = (pid: number): number =>
  Number(
    readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /s, '')
      .split(' ')[1],
  );

test(
  'a clone generated from a real PostgreSQL profile (pgbench TPC-B-like) serves pgbench: each statement kind at its profiled sizes, its processes at rest and under load',
  { timeout: 120_000 },
  async () => {
    const p = fixtureProfile('postgres');
    // Its first background process writes as a WAL writer would: 8 KiB and an fdatasync each
    // 20 statements served by the connections' processes.
    const writer = p.skeleton.background.find((b) => b.ownProcess && b.sleep !== 'idle')!;
    writer.disk = [
      { name: 'fdatasync', perReq: 0.05 },
      { name: 'pwrite64', perReq: 0.05, sizes: [[8192, 1]] },
    ];
    // Two serialized sections, as fitted to PostgreSQL at scale 1: the tellers' update (the
    // second) on 7 locks, the branch's (the third) on one, each held to the commit, their
    // waiters sleeping on latches.
    p.skeleton.locks = [
      { op: 'update', nth: 2, release: 'end', ways: 7, wait: 'latch', byLoad: [] },
      { op: 'update', nth: 3, release: 'end', ways: 1, wait: 'latch', byLoad: [] },
    ];
    // The commit makes every fdatasync, the other kinds the rest of the calls.
    const sync = (r: (typeof p.requests)[number]) =>
      p.kernel.replay.map((c) => (c.name === 'fdatasync' ? { ...c, perReq: r.op === 'end' ? 1 : 0 } : c));
    for (const r of p.requests) r.replay = sync(r);
    // A select reads into a cold cache of 200 pages besides, touching one of them.
    const select = p.requests.find((r) => r.op === 'select')!;
    select.replay = select.replay!.map((c) =>
      c.name === 'pread64' ? { ...c, cold: { pages: 200, touches: 1 } } : c,
    );
    const dir = join(tmp, 'postgres');
    generateClone(p, dir);
    const at = (op: string) => p.requests.findIndex((r) => r.op === op);
    const src = readFileSync(join(dir, 'clone.c'), 'utf8');
    assert.ok(
      src.includes(`{ ${at('update')}u, 3u, ${at('end')}u, 1u, 1 }`),
      'the branch section in clone.c',
    );
    assert.ok(src.includes('.n_locks = 2u'));
    assert.match(src, new RegExp(`replay_steps_${at('end')}\\[[^]*?TWIN_SC_FDATASYNC, 1\\.0000`));
    assert.match(
      src,
      new RegExp(
        `replay_steps_${at('select')}\\[[^]*?TWIN_SC_PREAD, [0-9.]+, replay_sizes_\\d+, \\d+, 200u, 1\\.000000, TWIN_STEP_REQUEST }`,
      ),
    );
    const w = parseWith(
      Workload,
      {
        protocol: 'postgres',
        driver: { name: 'pgbench', args: ['-U', 'postgres', 'postgres'] },
        preload: false,
        connections: 4,
        loads: [700],
        duration: 1,
      },
      'postgres',
    );
    const target = await launchTarget(cloneLaunchSpec(buildClone(dir), w));
    try {
      // At rest: the main process and the background processes (checkpointer, WAL writer...).
      const own = p.skeleton.background.filter((b) => b.ownProcess).length;
      assert.ok(own > 0);
      // The start's probe of the port has a process of its own, forked once the probe is
      // accepted and ended with it: the count at rest is the one that holds.
      assert.equal(await steadyCount(() => target.pids().length), 1 + own);
      // Through the relay: every statement kind answered at sizes the original answered with.
      const relayed = await recordReplies(w, target.port, 700, 1);
      assert.equal(totalErrors(relayed), 0, JSON.stringify(relayed.errors));
      for (const op of relayed.ops) {
        const want = p.requests.find((q) => q.op === op.op);
        assert.ok(want, `${op.op}: a kind the original never answered`);
        for (const [s] of op.resp_sizes)
          assert.ok(
            want.responseSizes.some(([t]) => t === s) || (op.op === 'select' && op.resp_sizes.length > 1),
            `${op.op}: size ${s} never profiled`,
          );
      }
      for (const k of ['startup', 'begin', 'update', 'select', 'insert', 'end'])
        assert.ok(
          relayed.ops.some((o) => o.op === k && o.count > 0),
          k,
        );
      // A process for each of pgbench's connections while they are open.
      let during = 0;
      const look = setTimeout(() => (during = target.pids().length), 1500);
      // The background processes' (a parent's count takes in its children's once it reaps them).
      // (A connection's process may still be ending: one that waited for a section.)
      for (let t = 0; t < 30 && target.pids().length > 1 + own; t++) await sleep(100);
      const resting = target.pids();
      const background = resting.filter((pid) => resting.includes(parentOf(pid)));
      assert.equal(background.length, own);
      const wrote = () => background.reduce((n, pid) => n + writtenBytes(pid), 0);
      const before = wrote();
      const r = await runLoad(w, target.port, { rate: 700, duration: 2, warmup: 0.5 });
      clearTimeout(look);
      assert.equal(totalErrors(r), 0, JSON.stringify(r.errors));
      // (every transaction through both sections: none left waiting)
      assert.ok(r.requests > 500 && r.driver && r.driver.tps > 50, JSON.stringify(r.driver));
      assert.equal(during, 1 + own + w.connections);
      // The writer's bytes follow the statements every process served (those of the warm-up
      // too), made on its wake-ups: the last may still be to come.
      await new Promise((done) => setTimeout(done, 1000));
      const bytes = wrote() - before;
      assert.ok(
        bytes >= 0.05 * 8192 * r.requests * 0.8,
        `${bytes} bytes written for ${r.requests} statements`,
      );
      assert.ok(bytes <= 0.05 * 8192 * r.sent * 2, `${bytes} bytes written for ${r.sent} statements`);
    } finally {
      await target.stop();
    }
  },
);
