import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { blockCounts, blockUnits, MIX_CLASSES } from '../../src/synth/mix.js';
import { addCounts, bodyPlan, plannedCounts } from '../../src/synth/body.js';
import { INSN_CLASSES, Profile, type InsnClass } from '../../src/model/index.js';
import {
  binsFromCurve,
  binTarget,
  curveAt,
  footprint,
  LINE,
  histogramOf,
  ringDistance,
  ringTrace,
  stackDistances,
  synthesizeRings,
  withMedians,
  type Interference,
} from '../../src/synth/rings.js';
import { dataRounds } from '../../src/synth/rounds.js';
import { chainRounds, CODE_PASSES, codePasses } from '../../src/synth/passes.js';
import { splitBins } from '../../src/synth/sides.js';

test('stack distances: exact LRU on a small trace', () => {
  const d = stackDistances([1, 2, 3, 1, 1, 2, 4, 3]);
  assert.deepEqual(Array.from(d), [Infinity, Infinity, Infinity, 3, 1, 3, Infinity, 4]);
});

test('a miss-ratio curve gives its reuse histogram; a rising point is clamped', () => {
  const bins = binsFromCurve([
    { bytes: 8192, missesPerReq: 50 },
    { bytes: 32768, missesPerReq: 20 },
    { bytes: 1 << 20, missesPerReq: 21 },
    { bytes: 16 << 20, missesPerReq: 1 },
  ]);
  assert.deepEqual(
    bins.map((b) => [b.lo, b.hi, b.perReq]),
    [
      [128, 512, 30],
      [512, 16384, 0],
      [16384, 262144, 19],
      [262144, null, 1],
    ],
  );
});

// A histogram like a server's: many short reuses past an 8 KiB cache, fewer at each larger size.
const curve = [
  { bytes: 8 << 10, missesPerReq: 120 },
  { bytes: 16 << 10, missesPerReq: 70 },
  { bytes: 32 << 10, missesPerReq: 45 },
  { bytes: 64 << 10, missesPerReq: 30 },
  { bytes: 128 << 10, missesPerReq: 20 },
  { bytes: 256 << 10, missesPerReq: 12 },
  { bytes: 1 << 20, missesPerReq: 5 },
];

for (const f of [
  { hotLines: 40, hotFootprint: 40 },
  { hotLines: 60, hotFootprint: 600 },
] as Interference[]) {
  test(`rings reproduce a reuse-distance histogram within 2% under LRU (${f.hotLines} outside lines per request from ${f.hotFootprint})`, () => {
    const bins = binsFromCurve(curve);
    const rings = synthesizeRings(bins, f);
    // Every ring's modelled distance is its bin's middle, within one line of rounding.
    rings.forEach((r, i) => {
      if (!r.lines) return;
      const d = ringDistance(rings, i, f);
      const b = bins[i];
      assert.ok(
        d > b.lo && (b.hi === null || d <= b.hi),
        `ring ${i}: distance ${d} outside (${b.lo}, ${b.hi}]`,
      );
    });
    // Simulate: warm up long enough for the largest ring to wrap, then count.
    const warm =
      Math.ceil(Math.max(...rings.filter((r) => r.lines).map((r) => r.lines / r.loadsPerReq))) * 2 + 10;
    const measured = 2000;
    const skip = ringTrace(rings, f, warm).trace.length;
    const { trace, ring } = ringTrace(rings, f, warm + measured);
    const got = histogramOf(stackDistances(trace), bins, measured, skip, ring);
    const total = bins.reduce((s, b) => s + b.perReq, 0);
    bins.forEach((b, k) => {
      const err = Math.abs(got[k] - b.perReq) / total;
      assert.ok(
        err <= 0.02,
        `bin (${b.lo}, ${b.hi}]: ${got[k].toFixed(2)} per request vs ${b.perReq}, ${(err * 100).toFixed(1)}% of all`,
      );
    });
  });
}

// Code segments walked more than once a request: in passes spread over the chain's rounds
// (chainRounds), a segment's lines are reused at the modelled distance on average, and where
// each pass walks the whole cycle (the first case), every one of them; walked in one pass, half
// of that segment's accesses come back at its own size and the rest after the whole request,
// neither near the mean.
for (const c of [
  {
    segs: [
      { lines: 60, loadsPerReq: 120 },
      { lines: 100, loadsPerReq: 100 },
    ],
    hot: 100,
    whole: true,
  },
  {
    segs: [
      { lines: 40, loadsPerReq: 100 },
      { lines: 150, loadsPerReq: 150 },
      { lines: 30, loadsPerReq: 45 },
    ],
    hot: 150,
  },
  {
    segs: [
      { lines: 90, loadsPerReq: 120 },
      { lines: 300, loadsPerReq: 200 },
    ],
    hot: 60,
  },
]) {
  const f: Interference = { hotLines: c.hot, hotFootprint: c.hot };
  const requests = 400;
  /** The mean distance of segment k's accesses, and the model's. */
  const distances = (maxPasses: number, k: number) => {
    const warm = 50;
    const skip = ringTrace(c.segs, f, warm, maxPasses).trace.length;
    const { trace } = ringTrace(c.segs, f, warm + requests, maxPasses);
    const d = stackDistances(trace);
    // The segment's lines are numbered after the outside's and the segments' before it.
    const lo = c.hot + c.segs.slice(0, k).reduce((a, s) => a + s.lines, 0);
    const model = ringDistance(c.segs, k, f, CODE_PASSES);
    let [sum, near, all] = [0, 0, 0];
    for (let t = skip; t < trace.length; t++) {
      if (trace[t] < lo || trace[t] >= lo + c.segs[k].lines) continue;
      all++;
      sum += d[t];
      if (Math.abs(d[t] - model) <= 0.1 * model) near++;
    }
    return { mean: sum / all, model, near: near / all };
  };
  const label = c.segs.map((s) => `${s.lines}/${s.loadsPerReq}`).join(', ');
  test(`a segment walked in passes reuses its lines at the modelled distance on average (${label}; ${c.hot} outside lines)`, () => {
    const rounds = chainRounds(c.segs, CODE_PASSES, c.hot);
    assert.ok(rounds[0].length >= 2, `the first segment in ${rounds[0].length} passes`);
    const passes = distances(CODE_PASSES, 0);
    const err = Math.abs(passes.mean - passes.model) / passes.model;
    assert.ok(err <= 0.1, `mean ${passes.mean.toFixed(0)} lines, model ${passes.model.toFixed(0)}`);
    if (c.whole) {
      const one = distances(1, 0);
      assert.ok(passes.near >= 0.9 && one.near <= 0.1, `within 10%: ${passes.near}, in one pass ${one.near}`);
    }
  });
}

test('segments walked whole reuse their lines at the distances a walk from a cursor does', () => {
  // memcached's bench clone: a segment of 90 lines walked 93 blocks a request, one of 25
  // walked 30.6, one of 179 walked 3.9 (from its cursor either way); 60 outside lines.
  const segs = [
    { lines: 90, loadsPerReq: 93.1 },
    { lines: 25, loadsPerReq: 30.6 },
    { lines: 179, loadsPerReq: 3.9 },
  ];
  const f: Interference = { hotLines: 60, hotFootprint: 60 };
  const bins = [0, 30, 100, 200, 400, 800].map((lo, i, a) => ({ lo, hi: a[i + 1] ?? null, perReq: 0 }));
  const hist = (whole: boolean) => {
    const warm = 200;
    const skip = ringTrace(segs, f, warm, 1, whole).trace.length;
    const { trace, ring } = ringTrace(segs, f, warm + 1000, 1, whole);
    return histogramOf(stackDistances(trace), bins, 1000, skip, ring);
  };
  const [cursor, whole] = [hist(false), hist(true)];
  const total = segs.reduce((a, r) => a + r.loadsPerReq, 0);
  assert.ok(Math.abs(whole.reduce((a, b) => a + b, 0) - total) < 0.5, `${whole.join(', ')} a request`);
  for (let k = 0; k < bins.length; k++)
    assert.ok(
      Math.abs(whole[k] - cursor[k]) <= 0.03 * total,
      `bin ${bins[k].lo}: ${whole[k].toFixed(1)} whole, ${cursor[k].toFixed(1)} from the cursor`,
    );
});

test('code segments take passes only where the body mispredicts enough to pay for them', () => {
  const bins = [4, 8, 16, 32].map((k) => ({ lo: k * 16, hi: k * 32, perReq: 10 }));
  // Four segments cost 16 mispredictions a request; each pass past the first, two a segment.
  assert.equal(codePasses(6, bins), 1, "memcached's body: 6 a request");
  assert.equal(codePasses(11, bins), 1, "redis's: 11");
  assert.equal(codePasses(28, bins), 2);
  assert.equal(codePasses(40, bins), CODE_PASSES);
  assert.equal(codePasses(160, bins), CODE_PASSES, "nginx's: 160");
  assert.equal(codePasses(160, []), 1);
  // Walked in one pass, a segment is called once a request.
  const segs = [
    { lines: 40, loadsPerReq: 100 },
    { lines: 150, loadsPerReq: 150 },
  ];
  assert.deepEqual(chainRounds(segs, codePasses(6, bins), 100), [[0], [0]]);
  assert.ok(chainRounds(segs, codePasses(160, bins), 100)[0].length >= 2);
});

// PostgreSQL's data (its profile's reuse bins up to 128 KiB, a statement): rings smaller than
// their loads a request. Walked in one call each, most of a ring's loads reuse at its own size
// and the rest after the whole statement; in the rounds dataRounds picks, each bin's accesses
// come back in it. An example of fewer loads than lines keeps one round.
test('data rings walked in rounds reproduce a histogram whose rings are smaller than their loads', () => {
  const bins = [
    { lo: 128, hi: 256, perReq: 789, median: 174 },
    { lo: 256, hi: 512, perReq: 510, median: 358 },
    { lo: 512, hi: 1024, perReq: 629, median: 792 },
    { lo: 1024, hi: 2048, perReq: 678, median: 1254 },
  ];
  const f: Interference = { hotLines: 64, hotFootprint: 192 };
  const R = dataRounds(bins, f, 100_000);
  assert.equal(R, 16);
  const error = (passes: { every: number }) => {
    const rings = synthesizeRings(bins, f, passes);
    const skip = ringTrace(rings, f, 50, passes).trace.length;
    const { trace, ring } = ringTrace(rings, f, 350, passes);
    const got = histogramOf(stackDistances(trace), bins, 300, skip, ring);
    return Math.max(...bins.map((b, k) => Math.abs(got[k] - b.perReq) / b.perReq));
  };
  assert.ok(error({ every: R }) <= 0.06, `in ${R} rounds: ${error({ every: R })}`);
  assert.ok(error({ every: 1 }) >= 0.5, `in one: ${error({ every: 1 })}`);
  // Too little body for the calls: one round.
  assert.equal(dataRounds(bins, f, 1_000), 1);
  assert.equal(dataRounds([{ lo: 128, hi: 256, perReq: 100, median: 174 }], f, 100_000), 1);
});

test('without the interference correction the same histogram is missed', () => {
  const f: Interference = { hotLines: 40, hotFootprint: 40 };
  const bins = binsFromCurve(curve);
  const naive = bins.map((b) => ({
    lines: Math.round(b.hi === null ? 2 * b.lo : Math.sqrt(b.lo * b.hi)),
    loadsPerReq: b.perReq,
  }));
  const warm = Math.ceil(Math.max(...naive.map((r) => r.lines / r.loadsPerReq))) * 2 + 10;
  const skip = ringTrace(naive, f, warm).trace.length;
  const { trace, ring } = ringTrace(naive, f, warm + 2000);
  const got = histogramOf(stackDistances(trace), bins, 2000, skip, ring);
  const total = bins.reduce((s, b) => s + b.perReq, 0);
  const worst = Math.max(...bins.map((b, k) => Math.abs(got[k] - b.perReq) / total));
  assert.ok(worst > 0.05, `naive rings were within ${(worst * 100).toFixed(1)}%`);
});

test('a code block holds the wanted classes in proportion, its operations summing to its size', () => {
  const u = blockUnits({ alu: 500, load: 200, store: 100, loadop: 100, mul: 0, fp: 50 }, 9);
  assert.ok(
    Math.abs(u.alu! - 5) < 1e-9 &&
      Math.abs(u.load! - 2) < 1e-9 &&
      Math.abs(u.store! - 1) < 1e-9 &&
      u.fp === undefined,
    JSON.stringify(u),
  );
  assert.deepEqual(blockUnits({}, 4), { alu: 4 });
  // Branches, calls and string work too: a block then executes a test per branch, a return
  // per call, and the blocks with string work (here half of them) a reset of the string
  // pointer.
  const v = blockUnits({ alu: 400, load: 200, cond: 200, callret: 150, string: 50 }, 10);
  assert.deepEqual(v, { alu: 4, load: 2, store: 0, loadop: 0, mul: 0, cond: 2, callret: 1.5, string: 0.5 });
  // ... and a test and branch to the next block.
  assert.deepEqual(blockCounts(v), {
    alu: 7.5,
    load: 2,
    store: 0,
    loadop: 0,
    mul: 0,
    cond: 3,
    callret: 3,
    string: 0.5,
  });
  // Given the blocks a request runs, what they execute besides their operations counts: 50
  // blocks of 12.5 operations execute exactly what is wanted.
  const want = { alu: 400, load: 200, cond: 200, callret: 150, string: 50 };
  const w = blockUnits(want, 12.5, 50);
  const per = blockCounts(w);
  for (const [c, n] of Object.entries(want))
    assert.ok(
      Math.abs(50 * (per[c as keyof typeof per] ?? 0) - n) < 1e-9,
      `${c}: ${50 * (per[c as keyof typeof per] ?? 0)} vs ${n}`,
    );
  // Fewer operations than that: every class in proportion.
  const x = blockUnits(want, 5, 50);
  assert.ok(
    Math.abs(x.load! / x.alu! - w.load! / w.alu!) < 1e-9 &&
      Math.abs(Object.values(x).reduce((a, b) => a + b!, 0) - 5) < 1e-9,
  );
});

test('footprint theory: the distinct lines of a window of requests follow from the miss curve', () => {
  // A server-like trace: each request walks a hot path of 150 lines, then 60 accesses over
  // 3,000 lines with skewed popularity (a Zipf-like law from a fixed PRNG).
  let x = 12345;
  const rand = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const requests = 3000;
  const trace: number[] = [];
  const starts: number[] = [];
  for (let q = 0; q < requests; q++) {
    starts.push(trace.length);
    for (let i = 0; i < 150; i++) trace.push(i);
    for (let i = 0; i < 60; i++) trace.push(1000 + Math.floor(3000 * rand() ** 3));
  }
  const d = stackDistances(trace);
  const warm = 500;
  const curve = [128, 256, 512, 1024, 2048, 4096].map((lines) => {
    let misses = 0;
    for (let t = starts[warm]; t < d.length; t++) if (d[t] > lines) misses++;
    return { bytes: lines * 64, missesPerReq: misses / (requests - warm) };
  });
  for (const r of [0.5, 1, 2, 5, 20, 100]) {
    // Distinct lines in windows of r requests (210 accesses each), averaged over windows
    // starting anywhere.
    const len = Math.round(r * 210);
    let sum = 0;
    let n = 0;
    for (let t = starts[warm]; t + len < trace.length; t += 397) {
      sum += new Set(trace.slice(t, t + len)).size;
      n++;
    }
    const got = footprint(curve, r, 210);
    const want = sum / n;
    assert.ok(
      Math.abs(got - want) <= 0.15 * want,
      `${r} requests: ${got.toFixed(0)} lines modelled, ${want.toFixed(0)} in the trace`,
    );
  }
});

/** The redis fixture's profile. */
const redisProfile = () =>
  Profile.parse(
    JSON.parse(
      readFileSync(
        fileURLToPath(new URL('../../../test/fixtures/profile-redis.json', import.meta.url)),
        'utf8',
      ),
    ),
  );

test('the plan leaves out of its blocks and mix loop what the clone ran beyond its counts, class by class', () => {
  const p = redisProfile();
  const o = p.body.original;
  const want = Object.fromEntries(INSN_CLASSES.map((c) => [c, o.mix!.shares[c] * o.insnsPerReq]));
  // Planned counts plus overhead against the original's, in percentage points of its instructions.
  const gap = (q: Profile) => {
    const got = addCounts(plannedCounts(q, bodyPlan(q)), q.knobs.mixOverhead ?? {});
    return Math.max(...MIX_CLASSES.map((c) => Math.abs((got[c] ?? 0) - want[c]) / o.insnsPerReq));
  };
  // (Within 0.6 points: the loop's exit is a conditional branch every 128 instructions, and
  // redis's skeleton leaves fewer than that to the loop.)
  assert.ok(gap(p) < 0.006, `no overhead: ${gap(p)}`);
  // 300 ALU instructions and 40 fewer jumps a request than planned: the blocks and the loop
  // take them out, and in.
  const mixOverhead = Object.fromEntries(
    INSN_CLASSES.map((c) => [c, c === 'alu' ? 300 : c === 'jump' ? -40 : 0]),
  ) as Record<InsnClass, number>;
  const withOverhead = { ...p, knobs: { ...p.knobs, mixOverhead } };
  assert.ok(gap(withOverhead) < 0.006, `with overhead: ${gap(withOverhead)}`);
  // Unplanned, the same overhead is off by as much.
  const plain = addCounts(plannedCounts(p, bodyPlan(p)), { alu: 300 });
  assert.ok(Math.abs((plain.alu ?? 0) - want.alu) / o.insnsPerReq > 0.04);
});

test("a bin's ring aims at the median distance of its accesses on a finer curve", () => {
  // Between 16 and 32 KiB the sweep sees 80 misses; the finer curve shows 70 of them gone by
  // 20 KiB: half of the bin's accesses are reused within about 18 KiB, not at its middle (22.6).
  const sweep = [16, 32, 64].map((k, i) => ({ bytes: k << 10, missesPerReq: [100, 20, 0][i] }));
  const fine = [16, 20, 24, 28, 32, 64].map((k, i) => ({
    bytes: k << 10,
    missesPerReq: [100, 30, 25, 22, 20, 0][i],
  }));
  const [b, , open] = withMedians(binsFromCurve(sweep), fine);
  const kib = (lines: number) => (lines * LINE) / 1024;
  assert.ok(kib(binTarget(b)) > 16 && kib(binTarget(b)) < 19, `${kib(binTarget(b))} KiB`);
  assert.equal(curveAt(fine, 24 << 10), 25);
  // A bin the finer curve sees nothing of keeps its middle.
  const [flat] = withMedians(binsFromCurve(sweep), [{ bytes: 8 << 10, missesPerReq: 5 }]);
  assert.equal(binTarget(flat), Math.sqrt(flat.lo * flat.hi!));
  assert.equal(open.median, undefined);
});

test('a last-level bin is cut where one step would be off by more than allowed', () => {
  // memcached-churn's shape: 29.7 misses a request at 4 MiB, 28 at 8, 8 at 12, 0.9 at 16.
  const sweep = [256, 4096, 16384, 32768].map((k, i) => ({
    bytes: k << 10,
    missesPerReq: [40, 29.7, 0.9, 0.2][i],
  }));
  const fine = [256, 4096, 6144, 8192, 12288, 16384, 32768].map((k, i) => ({
    bytes: k << 10,
    missesPerReq: [40, 29.7, 29.2, 28, 8, 0.9, 0.2][i],
  }));
  const allowed = (m: number) => Math.max(0.1 * m, 0.3);
  const bins = binsFromCurve(sweep);
  const cut = splitBins(bins, fine, (256 << 10) / LINE, allowed);
  const mib = (lines: number | null) => (lines === null ? null : (lines * LINE) / 2 ** 20);
  // 4 to 8 MiB holds 1.7 accesses and stays whole; 8-12 and 12-16 become rings of their own.
  assert.deepEqual(
    cut.map((b) => [mib(b.lo), mib(b.hi)]),
    [
      [0.25, 4],
      [4, 8],
      [8, 12],
      [12, 16],
      [16, 32],
      [32, null],
    ],
  );
  const sum = (bs: typeof bins) => bs.reduce((a, b) => a + b.perReq, 0);
  assert.ok(Math.abs(sum(cut) - sum(bins)) < 1e-9);
  // Every finer point inside a piece is within what is allowed of either of the piece's steps.
  const stepAt = (bytes: number, atUpper: boolean) =>
    cut.reduce((a, b) => a + ((atUpper ? (b.hi ?? Infinity) : b.lo) * LINE > bytes ? b.perReq : 0), 0);
  const inside = fine.filter((q) =>
    cut.some((b) => b.hi !== null && q.bytes > b.lo * LINE && q.bytes < b.hi * LINE),
  );
  assert.ok(inside.some((q) => q.bytes === 6144 << 10));
  for (const q of inside)
    for (const atUpper of [false, true]) {
      const off = Math.abs(stepAt(q.bytes, atUpper) - q.missesPerReq);
      assert.ok(off <= allowed(q.missesPerReq) + 1e-9, `${q.bytes >> 20} MiB off by ${off.toFixed(2)}`);
    }
  // Bins below the size it starts at are left alone; a wider tolerance joins them all again.
  assert.deepEqual(splitBins(bins, fine, (8192 << 10) / LINE, allowed), bins);
  assert.equal(splitBins(bins, fine, (256 << 10) / LINE, () => 100).length, bins.length);
});

test('knobs tuned with other bins are left unused: the plan is the untuned one', () => {
  const p = redisProfile();
  const plain = bodyPlan(p);
  const n = plain.rings.length;
  const other = {
    ...p,
    knobs: { ...p.knobs, dataLoads: Array(n + 2).fill(50), dataLines: Array(n + 2).fill(9) },
  };
  assert.deepEqual(bodyPlan(other).rings, plain.rings);
  // With one a bin, they are used.
  const same = { ...p, knobs: { ...p.knobs, dataLoads: Array(n).fill(50), dataLines: Array(n).fill(9) } };
  const sized = bodyPlan(same).rings;
  assert.ok(sized.some((r) => r.lines === 9) && sized.every((r) => r.lines === 0 || r.lines === 9));
});
