import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AIM, L1_GEOMETRIES, l1Errors, offTarget, pointFigures, tunePoints } from '../../src/tune/figures.js';
import { adaptGain, BLAME, GROUPS, groupWorse, sameKnobs } from '../../src/tune/gains.js';
import {
  partTrim,
  refusedForCounts,
  trimKeeps,
  trimStep,
  TRIM_AIM,
  TRIM_NOISE,
  type TrimPart,
} from '../../src/tune/trim-rules.js';
import { medianDistance, nextSide, resize, solveLoads } from '../../src/tune/solve.js';
import { nextBudget } from '../../src/tune/budget.js';
import { partOf } from '../../src/tune/measured.js';
import { ZERO_TOTALS, type CgTotals } from '../../src/collect/cachegrind.js';
import { SWEEP } from '../../src/collect/sweep.js';
import { binsFromCurve, binTarget, LINE } from '../../src/synth/rings.js';
import { tuningTable } from '../../src/report/table.js';
import {
  L1_CURVE_MAX,
  l1Points,
  type CurvePoint,
  type PortableCpu,
  type Profile,
} from '../../src/model/index.js';

const SIZES = [8, 16, 32, 64, 128, 256, 1024, 2048, 4096, 16384, 32768].map((k) => k << 10);

test('a part that misses every cache below a size and hits every one above reuses between them', () => {
  // 90 of 100 accesses miss up to 64 KiB, 10 at 128 KiB, none above: half miss between 64 and 128 KiB.
  const curve = SIZES.map((bytes) => ({
    bytes,
    missesPerReq: bytes <= 64 << 10 ? 90 : bytes === 128 << 10 ? 10 : 0,
  }));
  const d = medianDistance(curve, 100) * LINE;
  assert.ok(d > 64 << 10 && d < 128 << 10, `${d} bytes`);
  // Past the ends: the end itself, the nearest the curve allows.
  assert.equal(
    medianDistance(
      SIZES.map((bytes) => ({ bytes, missesPerReq: 0 })),
      100,
    ),
    (8 << 10) / LINE,
  );
  assert.equal(
    medianDistance(
      SIZES.map((bytes) => ({ bytes, missesPerReq: 100 })),
      100,
    ),
    (32 << 20) / LINE,
  );
});

test('resizing moves a ring by its bin target over its measured distance, within bounds, and leaves a near one alone', () => {
  const bins = binsFromCurve(SIZES.map((bytes, k) => ({ bytes, missesPerReq: 100 - k })));
  const t = binTarget(bins[3]);
  assert.deepEqual(
    resize([1000, 1000, 1000], [bins[3], bins[3], bins[3]], [t / 2, t * 1.1, t * 100]),
    [2000, 1000, 250],
  );
  assert.deepEqual(resize([0, 1000], [bins[3], bins[3]], [t / 2, null]), [0, 1000]);
  // At half gain, half the way in log size.
  assert.deepEqual(resize([1000, 1000], [bins[3], bins[3]], [t / 4, t * 4], 0.5), [2000, 500]);
});

test('the loads solved against a curve reproduce it when each part misses below its bin', () => {
  // Three parts, each missing every size up to its bin's lower edge; the rest misses 5 everywhere.
  const truth = [40, 0, 25];
  const columns = [2, 4, 6].map((edge) => SIZES.map((_, j) => (j <= edge ? 1 : 0)));
  const rest = SIZES.map(() => 5);
  const want = SIZES.map((_, j) => rest[j] + columns.reduce((s, c, k) => s + truth[k] * c[j], 0));
  const got = solveLoads(
    want,
    rest,
    columns,
    want.map((x) => Math.max(0.05 * x, 0.5)),
    [1, 1, 1],
  );
  got.forEach((g, k) =>
    assert.ok(Math.abs(g - truth[k]) < 0.01, `part ${k}: ${g} loads, expected ${truth[k]}`),
  );
  // Loads never go negative, even where the rest alone misses more than wanted.
  assert.ok(
    solveLoads(
      SIZES.map(() => 1),
      rest,
      columns,
      SIZES.map(() => 1),
      [3, 3, 3],
    ).every((x) => x === 0),
  );
});

test("a step that keeps the code segments' sizes moves only their loads, by their measured misses a block", () => {
  // Two segments and an absent one; at 16, 32 and 64 KiB the first misses 0.1 a block, the
  // second 0.5, 0.5 and 0.2; nothing else misses. Wanted: 1.5 times what they miss now.
  const sizes = [16, 32, 64].map((k) => k << 10);
  const segs = [
    { lines: 40, loadsPerReq: 20 },
    { lines: 200, loadsPerReq: 10 },
    { lines: 0, loadsPerReq: 0 },
  ];
  const fr = [
    [0.1, 0.1, 0.1],
    [0.5, 0.5, 0.2],
    [0, 0, 0],
  ];
  const curves = segs.map((r, k) =>
    sizes.map((bytes, j) => ({ bytes, missesPerReq: r.loadsPerReq * fr[k][j] })),
  );
  const got = sizes.map((bytes, j) => ({
    bytes,
    missesPerReq: curves.reduce((s, c) => s + c[j].missesPerReq, 0),
  }));
  const want = got.map((q) => ({ ...q, missesPerReq: 1.5 * q.missesPerReq }));
  const bins = binsFromCurve(SIZES.map((bytes, k) => ({ bytes, missesPerReq: 100 - k }))).slice(0, 3);
  const next = nextSide(
    bins,
    segs,
    curves,
    want,
    got,
    [],
    0.1,
    0.05,
    1,
    { hotLines: 0, hotFootprint: 0 },
    true,
  );
  assert.deepEqual(next.lines, [40, 200, 0]);
  assert.equal(next.loads[2], 0);
  sizes.forEach((_, j) => {
    const pred = next.loads.reduce((s, x, k) => s + x * fr[k][j], 0);
    assert.ok(
      Math.abs(pred - want[j].missesPerReq) <= 0.05 * want[j].missesPerReq,
      `${sizes[j] >> 10} KiB: ${pred} vs ${want[j].missesPerReq}`,
    );
  });
  // Free to resize, the same step moves the sizes by the parts' distances.
  assert.notDeepEqual(
    nextSide(bins, segs, curves, want, got, [], 0.1, 0.05, 1, { hotLines: 0, hotFootprint: 0 }).lines,
    [40, 200, 0],
  );
});

test('a code segment walked more than once a request keeps its size where its median distance is only a guess', () => {
  // 50 lines walked 80 times a request: 60% of its uses hit at the curve's first size (16 KiB),
  // a median below every size measured; walked 30 times (f = 0.7 there), its median is known.
  const sizes = [16, 32, 64].map((k) => k << 10);
  const bins = binsFromCurve(SIZES.map((bytes, k) => ({ bytes, missesPerReq: 100 - k }))).slice(0, 1);
  const side = (loads: number, f: number[], walkedKeep: boolean) => {
    const segs = [{ lines: 50, loadsPerReq: loads }];
    const curve = sizes.map((bytes, j) => ({ bytes, missesPerReq: loads * f[j] }));
    return nextSide(
      bins,
      segs,
      [curve],
      curve,
      curve,
      [],
      0.1,
      0.05,
      1,
      { hotLines: 0, hotFootprint: 0 },
      false,
      undefined,
      1,
      walkedKeep,
    ).lines[0];
  };
  const guessed = [0.4, 0.1, 0];
  assert.notEqual(side(80, guessed, false), 50, 'resized by the guess without walkedKeep');
  assert.equal(side(80, guessed, true), 50);
  const known = [0.7, 0.6, 0.5];
  assert.notEqual(side(30, known, true), 50, 'a known median still resizes');
});

test('the tuner scores the worst figure against its tolerance, small counts by an absolute floor', () => {
  const orig = { insns: 10000, branch: 40, 'D@32K': 60, 'D@8K': 100, 'I@128K': 5 };
  // 10% more D1 misses at 32K: twice the 5% allowed; 8K and 128K are not scored (no server
  // core's L1 or L2 has either size at 8 ways).
  const r = offTarget(
    orig,
    { insns: 10000, branch: 40, 'D@32K': 66, 'D@8K': 300, 'I@128K': 50 },
    0.02,
    0.05,
    0.05,
  );
  assert.equal(r.worst, 'D@32K');
  assert.ok(Math.abs(r.score - 2) < 1e-9, `score ${r.score}`);
  // 0.3 misses where 0.1 were wanted is within 0.05 per 1,000 of 10,000 instructions (0.5).
  assert.ok(offTarget({ ...orig, 'D@32M': 0.1 }, { ...orig, 'D@32M': 0.3 }, 0.02, 0.05, 0.05).score <= 1);
  // A 64 KiB L1 counts at its 4-way point, not at 8 ways.
  const l1 = { ...orig, 'I@64K': 40, 'I@64K/4w': 50 };
  assert.ok(offTarget(l1, { ...l1, 'I@64K': 60 }, 0.02, 0.05, 0.05).score <= 1);
  const four = offTarget(l1, { ...l1, 'I@64K/4w': 55 }, 0.02, 0.05, 0.05);
  assert.equal(four.worst, 'I@64K/4w');
  assert.ok(Math.abs(four.score - 2) < 1e-9, `score ${four.score}`);
});

test('the root mean square of the errors ranks a clone off in one figure above one off in all', () => {
  const orig = { insns: 10000, branch: 40, 'D@32K': 60, 'I@32K': 20, 'L@256K': 10 };
  // One figure 3 tolerances off, the rest on the mark; against every figure 2.5 off.
  const one = offTarget(orig, { ...orig, 'D@32K': 69 }, 0.02, 0.05, 0.05);
  const all = offTarget(
    orig,
    { insns: 10500, branch: 45, 'D@32K': 67.5, 'I@32K': 22.5, 'L@256K': 11.25 },
    0.02,
    0.05,
    0.05,
  );
  assert.ok(Math.abs(one.score - 3) < 1e-9 && Math.abs(all.score - 2.5) < 1e-9);
  // Five figures: sqrt(9 / 5) against 2.5.
  assert.ok(Math.abs(one.rms - Math.sqrt(9 / 5)) < 1e-9, `rms ${one.rms}`);
  assert.ok(Math.abs(all.rms - 2.5) < 1e-9, `rms ${all.rms}`);
  assert.ok(one.rms < all.rms && one.score > all.score);
  // Errors that set no score count in the root mean square alone: six figures, sqrt(25 / 6).
  const more = offTarget(orig, { ...orig, 'D@32K': 69 }, 0.02, 0.05, 0.05, { 'I@L1s': 4 });
  assert.equal(more.worst, 'D@32K');
  assert.ok(Math.abs(more.score - 3) < 1e-9 && Math.abs(more.rms - Math.sqrt(25 / 6)) < 1e-9, `${more.rms}`);
});

test("each L1's error over every geometry a platform may draw is one figure, in tolerances", () => {
  // Every access misses every cache: 10 a request; the clone's code misses 11 (10% more, twice
  // the 5% allowed where 0.05 per 1,000 of 10,000 instructions is 0.5), its data the same.
  const table = (n: number) => ({
    lo: 2,
    hi: 11,
    counts: Array.from({ length: 10 }, () => [...new Array<number>(16).fill(0), n]),
  });
  const cpu = (i: number, d: number) =>
    ({
      insnsPerReq: 10000,
      reuse: { I: table(i), D: table(d), U: table(0), UI: table(0) },
    }) as unknown as Parameters<typeof l1Errors>[0];
  assert.deepEqual(l1Errors(cpu(10, 10), cpu(10, 10), 0.05, 0.05), { 'I@L1s': 0, 'D@L1s': 0 });
  const e = l1Errors(cpu(10, 10), cpu(11, 10), 0.05, 0.05);
  assert.ok(Math.abs(e['I@L1s'] - 2) < 1e-9 && e['D@L1s'] === 0, JSON.stringify(e));
  assert.deepEqual(l1Errors({ ...cpu(10, 10), reuse: undefined }, cpu(11, 10), 0.05, 0.05), {});
  // The geometries: 16 to 128 KiB, 2 to 16 ways, powers of two of sets.
  assert.ok(
    L1_GEOMETRIES.every((g) => g.size >= 16 << 10 && g.size <= 128 << 10 && g.ways >= 2 && g.ways <= 16),
  );
  assert.ok(L1_GEOMETRIES.some((g) => g.size === 96 << 10 && g.ways === 6));
  assert.ok(L1_GEOMETRIES.every((g) => Number.isInteger(Math.log2(g.size / 64 / g.ways))));
});

test("a group's gain halves when its worst error overshoots, and recovers while errors shrink slowly", () => {
  const data = (k: string) => k.startsWith('D@');
  // D@32K was 4x over; now 3x under: an overshoot.
  assert.equal(adaptGain(1, { 'D@32K': 4, 'D@64K': 1 }, { 'D@32K': -3, 'D@64K': 0.5 }, data), 0.5);
  assert.equal(adaptGain(0.25, { 'D@32K': 4 }, { 'D@32K': -3 }, data), 0.25);
  // Still 3x over from 4x: too slow, the gain rises (to 1 at most).
  assert.equal(adaptGain(0.5, { 'D@32K': 4 }, { 'D@32K': 3 }, data), 0.75);
  // Halved from 4x to 1.5x: kept.
  assert.equal(adaptGain(0.5, { 'D@32K': 4 }, { 'D@32K': 1.5 }, data), 0.5);
  // Another group's errors do not move it; nor does a worst error that was on target.
  assert.equal(adaptGain(1, { 'I@32K': 4 }, { 'I@32K': -4 }, data), 1);
  assert.equal(adaptGain(1, { 'D@32K': 0.8 }, { 'D@32K': -3 }, data), 1);
});

test('a group did worse when its largest error off target grew', () => {
  const data = (k: string) => k.startsWith('D@');
  assert.equal(groupWorse({ 'D@32K': 2, 'I@32K': 1 }, { 'D@32K': -2.5, 'I@32K': 9 }, data), true);
  assert.equal(groupWorse({ 'D@32K': 2, 'I@32K': 1 }, { 'D@32K': 1.5, 'I@32K': 9 }, data), false);
  // Errors within their tolerance count alike.
  assert.equal(groupWorse({ 'D@32K': 0.2 }, { 'D@32K': 0.9 }, data), false);
  assert.equal(groupWorse(null, { 'D@32K': 0.9 }, data), true);
});

test('a step that carries the 4-way point off is blamed on the segments as well as the conflict segment', () => {
  // Redis's clone, iterations 2 and 3 of one tuning (errors in tolerances): the segments' step
  // brought the 32 KiB code misses closer and the 4-way point far over.
  const before = { 'I@32K': -2.96, 'I@64K/4w': 0.98, 'D@32K': 0.06 };
  const after = { 'I@32K': 1.96, 'I@64K/4w': 5.85, 'D@32K': 0.58 };
  assert.equal(groupWorse(before, after, GROUPS.code), false);
  assert.equal(groupWorse(before, after, BLAME.code), true);
  assert.equal(groupWorse(before, after, BLAME.codeConflict), true);
  assert.equal(groupWorse(before, after, BLAME.data), false);
  // Each group's gain still follows its own figures alone.
  assert.equal(GROUPS.code('I@64K/4w'), false);
});

test('a trim moves the part that misses the L1 most by what is missing, at its misses per load', () => {
  // Nginx's clone as kept: 46.9 misses a request at 32 KiB against 50.8; its 32-64 KiB ring
  // misses 44 of them in 41.9 loads.
  const ring = (loads: number, at32: number, at4 = 0): TrimPart => ({
    loads,
    perLoad: loads ? { 'D@32K': at32 / loads, 'D@64K/4w': at4 / loads } : {},
  });
  const parts = [ring(8.8, 0.1), ring(78.9, 2.0), ring(41.9, 44.0, 10), ring(0, 0)];
  const tolOf = () => 1.0 / TRIM_AIM;
  const move = partTrim('D@32K', { 'D@32K': 46.9 }, { 'D@32K': 50.8 }, parts, tolOf)!;
  assert.equal(move.k, 2);
  assert.ok(Math.abs(move.loads - (41.9 + 3.9 / (44 / 41.9))) < 1e-9, `${move.loads}`);
  // What the move carries elsewhere, at the part's misses per load there.
  assert.ok(Math.abs(move.moved['D@64K/4w'] - (move.loads - 41.9) * (10 / 41.9)) < 1e-9);
  // Within what is allowed: nothing to do; no part run once a request: nothing to move.
  assert.equal(partTrim('D@32K', { 'D@32K': 50.0 }, { 'D@32K': 50.8 }, parts, tolOf), null);
  assert.equal(
    partTrim('D@32K', { 'D@32K': 40 }, { 'D@32K': 50.8 }, [ring(0.5, 0.4), ring(0, 0)], tolOf),
    null,
  );
  // At most a quarter more or less.
  assert.equal(partTrim('D@32K', { 'D@32K': 10 }, { 'D@32K': 50.8 }, [ring(40, 40)], tolOf)!.loads, 50);
  assert.equal(partTrim('D@32K', { 'D@32K': 90 }, { 'D@32K': 50.8 }, [ring(40, 40)], tolOf)!.loads, 30);
  // A part no trim may move is passed over.
  assert.equal(
    partTrim(
      'D@32K',
      { 'D@32K': 90 },
      { 'D@32K': 50.8 },
      [{ ...ring(40, 40), still: true }, ring(20, 10)],
      tolOf,
    )!.k,
    1,
  );
});

test('a trim moves the part whose move leaves the figures it sees closest, not the one that misses most', () => {
  // Redis's clone: 1.9 data misses a request too many at 32 KiB. Its largest ring misses there
  // and at 256 KiB on every load; a smaller one misses at 32 KiB and hits at 256 KiB.
  const parts: TrimPart[] = [
    { loads: 17.24, perLoad: { 'D@32K': 1, 'L@256K': 1 } },
    { loads: 9.12, perLoad: { 'D@32K': 1, 'L@256K': 0 } },
  ];
  const want = { 'D@32K': 51.78, 'L@256K': 24.33 };
  const tolOf = (k: string) => 0.05 * want[k as keyof typeof want];
  const got = { 'D@32K': 53.69, 'L@256K': 23.88 };
  const move = partTrim('D@32K', got, want, parts, tolOf, [], ['L@256K'])!;
  assert.equal(move.k, 1);
  assert.ok(Math.abs(move.loads - (9.12 - 1.91)) < 1e-9, `${move.loads}`);
  // Judged on its own figure alone, either move would do: the first that misses there.
  assert.equal(partTrim('D@32K', got, want, parts, tolOf)!.k, 0);
  // For a last level the trim sees: the ring that misses there, what it carries to 32 KiB
  // judged with the rest (redis's clone, 25.89 misses a request at 256 KiB against 24.36).
  const level = partTrim(
    'L@256K',
    { 'D@32K': 52.23, 'L@256K': 25.89 },
    { 'D@32K': 52.5, 'L@256K': 24.36 },
    parts,
    (k) => 0.05 * (k === 'D@32K' ? 52.5 : 24.36),
    [],
    ['D@32K'],
  )!;
  assert.equal(level.k, 0);
  assert.ok(Math.abs(level.moved['D@32K'] + 1.53) < 1e-9, `${level.moved['D@32K']}`);
  // With a gain (a code segment's), a part takes that share of what its misses per load say.
  assert.ok(
    Math.abs(partTrim('D@32K', got, want, [parts[1]], tolOf, [], [], 0.5)!.loads - (9.12 - 0.955)) < 1e-9,
  );
});

test('a trim that would carry a figure its runs do not see off is not tried', () => {
  // A clone 0.65 misses a request over at 32 KiB, its largest ring 6 of them in 40 loads and
  // 2 misses at a last level the trim does not measure.
  const parts: TrimPart[] = [
    { loads: 40, perLoad: { 'D@32K': 6 / 40, 'L@16M': 2 / 40 } },
    { loads: 10, perLoad: { 'D@32K': 0.05, 'L@16M': 0.01 } },
  ];
  const tolOf = (k: string) => (k === 'L@16M' ? 0.3 / AIM : 0.16 / TRIM_AIM);
  // That level 0.5 under, allowed 0.3: fewer loads would take it further under.
  assert.equal(
    partTrim('D@32K', { 'D@32K': 8.25, 'L@16M': 4.5 }, { 'D@32K': 7.6, 'L@16M': 5 }, parts, tolOf, ['L@16M']),
    null,
  );
  // 0.1 over: the same move (4.3 loads fewer, 0.2 misses fewer there) leaves it within 0.3.
  const move = partTrim(
    'D@32K',
    { 'D@32K': 8.25, 'L@16M': 5.1 },
    { 'D@32K': 7.6, 'L@16M': 5 },
    parts,
    tolOf,
    ['L@16M'],
  )!;
  assert.ok(Math.abs(move.loads - (40 - 0.65 / (6 / 40))) < 1e-9, `${move.loads}`);
  assert.ok(Math.abs(move.moved['L@16M'] - (-0.65 / (6 / 40)) * (2 / 40)) < 1e-9, `${move.moved['L@16M']}`);
});

test('the next budget leaves the mix loop what the other parts, at their measured costs, leave of the target', () => {
  // A model clone: fixed parts at 12 instructions a block and 3 a branch, a mix loop that
  // runs 10% more instructions than planned, 500 more instructions a request than elsewhere.
  const cost = { code: 12, branch: 3 };
  const run = (blocks: number, branches: number, planned: number) =>
    500 + blocks * cost.code + branches * cost.branch + 1.1 * planned;
  const want = 9000;
  let blocks = 300,
    branches = 100,
    planned = 2000;
  for (let step = 0; step < 2; step++) {
    const got = run(blocks, branches, planned);
    const next = { blocks: blocks * 1.5 + step, branches: branches / 2 };
    // The plan estimates 10 a block and 2.5 a branch; its fixed parts' estimate is what the
    // budget must cover beside the mix loop.
    const fixedNext = next.blocks * 10 + next.branches * 2.5;
    const budget = nextBudget(
      [
        { kind: 'code', ir: blocks * cost.code, now: blocks, next: next.blocks },
        { kind: 'branch', ir: branches * cost.branch, now: branches, next: next.branches },
        { kind: 'code', ir: 0, now: 0, next: 3 },
      ],
      { ir: 1.1 * planned, planned },
      want - got,
      fixedNext,
    );
    blocks = next.blocks + 3;
    branches = next.branches;
    planned = budget - fixedNext;
    // Every instruction the model runs next is accounted for: on target in one step.
    assert.ok(Math.abs(run(blocks, branches, planned) - want) < 1e-6, `${run(blocks, branches, planned)}`);
  }
  // Parts that already take more than the target leave the mix loop nothing.
  assert.equal(
    nextBudget([{ kind: 'code', ir: 12000, now: 1000, next: 1000 }], { ir: 100, planned: 100 }, -5000, 10000),
    10000,
  );
});

test("the tuning table keeps every step's columns, a trim of the budget showing instructions only", () => {
  const step = (
    iteration: number,
    clone: number,
    points: Record<string, { clone: number; original: number }>,
  ) => ({
    iteration,
    bodyInsnsPerReq: 900,
    cloneInsnsPerReq: clone,
    targetInsnsPerReq: 1000,
    error: (clone - 1000) / 1000,
    points,
  });
  const p = {
    tuning: [
      step(0, 930, { insns: { clone: 930, original: 1000 }, 'D@32K': { clone: 12, original: 10 } }),
      step(1, 998, {}),
    ],
  } as unknown as Profile;
  const lines = tuningTable(p).split('\n');
  assert.ok(lines[1].includes('D@32K'), lines[1]);
  assert.ok(lines[3].includes('12.0/10.0'), lines[3]);
  assert.match(lines[4], /^1 .* 998\.0 .*-0\.2%\s+-$/);
});

test("at a last level the tuner scores the unified cache's misses, code and data summed, not either apart", () => {
  // The original's code misses 0 at a 128 KiB L1 but 3.6 at a 256 KiB unified level behind a
  // smaller L1 (its data evicted them there); its data 19.4 there.
  const curve = (l1: number[], ll: number[]) => [
    ...[8, 16, 32, 64, 128].map((k, j) => ({ bytes: k << 10, missesPerReq: l1[j] })),
    ...[256, 1024].map((k, j) => ({ bytes: k << 10, missesPerReq: ll[j] })),
  ];
  const cpu = (code: CurvePoint[], data: CurvePoint[]) =>
    ({
      insnsPerReq: 6000,
      branchMissesPerReq: 30,
      codeCurve: code,
      dataCurve: data,
      conflict: { bytes: 64 << 10, assoc: 4, dataMissesPerReq: 40, codeMissesPerReq: 12 },
    }) as unknown as PortableCpu;
  const orig = tunePoints(
    cpu(curve([450, 370, 100, 11, 0], [3.6, 0]), curve([230, 100, 50, 40, 30], [19.4, 0.1])),
  );
  assert.equal(orig['L@256K'], 23);
  assert.equal(orig['I@256K'], 0); // the curve, made monotone, shown as before
  // A clone whose code misses 9.4 there and its data 13.6 is on target: validation's L2 row is
  // the sum; one whose code misses 3.6 and data 25 is not.
  const clone = (ll: number, dll: number) =>
    tunePoints(cpu(curve([450, 370, 100, 11, 0], [ll, 0]), curve([230, 100, 50, 40, 30], [dll, 0.1])));
  assert.ok(offTarget(orig, clone(9.4, 13.6), 0.02, 0.05, 0.05).score <= 1);
  const off = offTarget(orig, clone(3.6, 25), 0.02, 0.05, 0.05);
  assert.equal(off.worst, 'L@256K');
  // The body's code segments come from the L1 points alone: none for the last level's 3.6.
  const bins = binsFromCurve(l1Points(curve([450, 370, 100, 11, 0], [3.6, 0])));
  assert.equal(bins.length, 5);
  assert.ok(Math.max(...bins.map((b) => b.lo * LINE)) <= L1_CURVE_MAX);
  assert.equal(
    bins.reduce((s, b) => s + b.perReq, 0),
    450,
  );
});

test("the sweep's L1 sizes are the curves' L1 points, its last levels all above them", () => {
  assert.equal(Math.max(...SWEEP.map((s) => s.l1)), L1_CURVE_MAX);
  assert.ok(SWEEP.every((s) => s.ll > L1_CURVE_MAX));
});

test('knobs that differ by less than a part in a thousand are the same step', () => {
  const k = { dataLines: [100, 2000], hardBranchesPerReq: 0, mixOverhead: { alu: 1.2 } };
  assert.equal(
    sameKnobs(k, { dataLines: [100.05, 2000], hardBranchesPerReq: 0, mixOverhead: { alu: 1.2 } }),
    true,
  );
  assert.equal(
    sameKnobs(k, { dataLines: [101, 2000], hardBranchesPerReq: 0, mixOverhead: { alu: 1.2 } }),
    false,
  );
  assert.equal(
    sameKnobs(k, { dataLines: [100, 2000], hardBranchesPerReq: 0, mixOverhead: { alu: 1.2, mul: 1 } }),
    false,
  );
  assert.equal(
    sameKnobs(k, { dataLines: [100, 2000], hardBranchesPerReq: 1e-6, mixOverhead: { alu: 1.2 } }),
    false,
  );
});

test('a trim moves the budget by the instructions missing and the random branches by the misses missing', () => {
  const want = { insns: 10000, branch: 30 };
  // Within 2% and within the branch tolerance: nothing to trim.
  assert.equal(
    trimStep({ insns: 10150, branch: 30.5 }, want, { budget: 5000, hard: 100 }, 1.25, 0.25, 0.02, 1),
    null,
  );
  // Instructions 5% over at 1.25 measured per planned: the budget falls by 400; the branches stay.
  assert.deepEqual(
    trimStep({ insns: 10500, branch: 30 }, want, { budget: 5000, hard: 100 }, 1.25, 0.25, 0.02, 1),
    { budget: 4600, hard: 100 },
  );
  // Two misses short at a quarter of a miss each: eight more random branches; the budget stays.
  assert.deepEqual(
    trimStep({ insns: 10000, branch: 28 }, want, { budget: 5000, hard: 100 }, 1.25, 0.25, 0.02, 1),
    { budget: 5000, hard: 108 },
  );
  // Never below none.
  assert.equal(
    trimStep({ insns: 10000, branch: 60 }, want, { budget: 5000, hard: 100 }, 1.25, 0.25, 0.02, 1)!.hard,
    0,
  );
});

test('a trim is kept when the figures are closer as a whole and none is worse than kept by more than it may spread', () => {
  const tols = { tol: 0.02, mpkiTol: 0.05, abs: 0.05 };
  const want = { insns: 10000, branch: 40, 'I@32K': 8 };
  // Instructions 0.25 of their tolerance, branch 2.4% short (0.48), code misses 0.6 of
  // theirs: the trim brings the branch to 0.05 and leaves the code misses, the worst, where
  // they were. Kept, though the worst error did not move.
  const kept = { insns: 10050, branch: 39.04, 'I@32K': 8.3 };
  assert.equal(trimKeeps(kept, { insns: 10040, branch: 39.9, 'I@32K': 8.3 }, want, tols), true);
  // Closer as a whole, but the code misses go past AIM (0.7) and past the worst kept (0.6).
  assert.equal(trimKeeps(kept, { insns: 10000, branch: 40, 'I@32K': 8.4 }, want, tols), false);
  // None past 0.6, but further as a whole (instructions 0.6 of their tolerance).
  assert.equal(trimKeeps(kept, { insns: 10120, branch: 39.9, 'I@32K': 8.3 }, want, tols), false);
  // Memcached's clone: its code misses the worst, 2.9 tolerances off and moved by no trim,
  // measured 0.2 more in a trim that took its data misses from 6.1% over to 1.0% under.
  const mc = { insns: 9111, branch: 39.98, 'I@32K': 7.66, 'D@32K': 54.2 };
  const mcKept = { insns: 9110, branch: 40.38, 'I@32K': 8.98, 'D@32K': 57.52 };
  assert.equal(
    trimKeeps(mcKept, { insns: 9123, branch: 40.71, 'I@32K': 9.07, 'D@32K': 53.66 }, mc, tols),
    true,
  );
  // The worst may spread by TRIM_NOISE, not more, where the rest come closer: here the
  // branch misses from 2.5 tolerances to none and the data misses from 2.2, the code
  // misses 2.9 (tolerance 0.456).
  const off = { ...mcKept, branch: 44.98, 'D@32K': 60.2 };
  const code = (e: number) => 7.66 + e * 0.05 * 9.111;
  assert.equal(
    trimKeeps(
      off,
      { insns: 9111, branch: 39.98, 'I@32K': code(2.897 + TRIM_NOISE - 0.02), 'D@32K': 54.2 },
      mc,
      tols,
    ),
    true,
  );
  assert.equal(
    trimKeeps(
      off,
      { insns: 9111, branch: 39.98, 'I@32K': code(2.897 + TRIM_NOISE + 0.02), 'D@32K': 54.2 },
      mc,
      tols,
    ),
    false,
  );
  // A figure within AIM stays within it: the instructions, 0.05 of their tolerance kept,
  // may go to 0.7 but not past, though the worst kept is 2.9.
  assert.equal(
    trimKeeps(
      off,
      { insns: 9111 * (1 + 0.02 * 0.65), branch: 39.98, 'I@32K': 8.98, 'D@32K': 54.2 },
      mc,
      tols,
    ),
    true,
  );
  assert.equal(
    trimKeeps(
      off,
      { insns: 9111 * (1 + 0.02 * 0.75), branch: 39.98, 'I@32K': 8.98, 'D@32K': 54.2 },
      mc,
      tols,
    ),
    false,
  );
  // Redis's clone: its 4-way code misses 5.6 tolerances over brought to 0.1, its 256 KiB
  // misses taken from 0.3 to 3.8 over: closer as a whole, refused.
  const rd = { insns: 6449, branch: 38.95, 'I@64K/4w': 34.67, 'L@256K': 24.76 };
  assert.equal(
    trimKeeps(
      { insns: 6439, branch: 38.95, 'I@64K/4w': 44.4, 'L@256K': 24.41 },
      { insns: 6449, branch: 38.95, 'I@64K/4w': 34.34, 'L@256K': 29.48 },
      rd,
      tols,
    ),
    false,
  );
  // Where another trim may follow, the branch misses (which it sets) may go to their
  // tolerance, not past: redis's clone, 0.49 of it to 0.78 for its code misses.
  const rk = { insns: 6432, branch: 39.1, 'I@64K/4w': 34.31, 'I@32K': 105.61 };
  const rkKept = { insns: 6440, branch: 40.06, 'I@64K/4w': 41.58, 'I@32K': 92.58 };
  const rkTrial = { insns: 6423, branch: 40.62, 'I@64K/4w': 33.85, 'I@32K': 102.6 };
  assert.equal(trimKeeps(rkKept, rkTrial, rk, tols, true), true);
  assert.equal(trimKeeps(rkKept, rkTrial, rk, tols), false);
  assert.equal(trimKeeps(rkKept, { ...rkTrial, branch: 41.2 }, rk, tols, true), false);
});

test('a trim refused for its instructions or branch misses alone is one to repair, and no other', () => {
  const tols = { tol: 0.02, mpkiTol: 0.05, abs: 0.05 };
  // Redis's clone in a bench: its code misses 96.7 and 42.8 a request against 106.6 and
  // 34.5 brought to 104.6 and 34.5, its branch misses from 41.1 to 36.2 against 38.9 (1.4
  // tolerances under, past the 1 a first trim may leave them at).
  const want = { insns: 6441, branch: 38.9, 'I@32K': 106.6, 'I@64K/4w': 34.5 };
  const kept = { insns: 6440, branch: 41.1, 'I@32K': 96.7, 'I@64K/4w': 42.8 };
  const trial = { insns: 6436, branch: 36.2, 'I@32K': 104.6, 'I@64K/4w': 34.5 };
  assert.equal(trimKeeps(kept, trial, want, tols, true), false);
  assert.equal(refusedForCounts(kept, trial, want, tols, true), true);
  // Refused for a code figure as well: nothing to repair.
  assert.equal(refusedForCounts(kept, { ...trial, 'I@64K/4w': 46 }, want, tols, true), false);
  // Kept: nothing to repair either.
  assert.equal(refusedForCounts(kept, { ...trial, branch: 38.5 }, want, tols, true), false);
});

test('a trim checks the tuned figures its sweep points give, named as the tuner names them', () => {
  const t = (o: Partial<CgTotals>): CgTotals => ({ ...ZERO_TOTALS, ...o });
  // 1,000 requests: the 32 KiB 8-way point (256 KiB behind it) and the 4-way 64 KiB one.
  const a = t({
    Ir: 2.0e6,
    Bcm: 1.5e4,
    Bim: 0.5e4,
    I1mr: 1e4,
    D1mr: 3e4,
    D1mw: 1e4,
    ILmr: 100,
    DLmr: 400,
    DLmw: 100,
  });
  const b = t({ Ir: 2.2e6, Bcm: 2.2e4, I1mr: 2.2e3, D1mr: 4.4e3, DLmr: 220 });
  const f = pointFigures([a, b], [2, 5], 1000);
  // Instructions and branch misses as the points' mean; each point's misses per instruction
  // at that count.
  assert.equal(f.insns, 2100);
  assert.ok(Math.abs(f.branch - 21) < 1e-9);
  assert.ok(Math.abs(f['I@32K'] - 10.5) < 1e-9);
  assert.ok(Math.abs(f['D@32K'] - 42) < 1e-9);
  assert.ok(Math.abs(f['L@256K'] - 0.6 * 1.05) < 1e-9);
  assert.ok(Math.abs(f['I@64K/4w'] - 2.1) < 1e-9);
  assert.ok(Math.abs(f['D@64K/4w'] - 4.2) < 1e-9);
  assert.ok(Math.abs(f['L@1M'] - 0.21) < 1e-9);
  // The names are the tuner's own.
  const named = Object.keys(
    tunePoints({
      insnsPerReq: 1,
      branchMissesPerReq: 0,
      dataCurve: [
        { bytes: 32 << 10, missesPerReq: 0 },
        { bytes: 256 << 10, missesPerReq: 0 },
        { bytes: 1 << 20, missesPerReq: 0 },
      ],
      codeCurve: [{ bytes: 32 << 10, missesPerReq: 0 }],
      conflict: { bytes: 64 << 10, assoc: 4, dataMissesPerReq: 0, codeMissesPerReq: 0 },
    } as PortableCpu),
  );
  for (const k of Object.keys(f)) assert.ok(named.includes(k), k);
});

test('the reuse curve decides between parts the scored point cannot tell apart', () => {
  // Two segments, sizes kept, each missing 0.5 a block at 32 KiB, and 10 blocks each: the
  // scored point wants 5 misses rather than 10, which either can give up. At 24 KiB (a
  // reuse-curve point) only the first misses (0.8 a block), and the original misses 8 there as
  // the clone does: the first keeps its blocks and the second gives them up (halving, the most
  // one step moves). Without the reuse curve the first gave them up, as good a fit there.
  const segs = [
    { lines: 300, loadsPerReq: 10 },
    { lines: 400, loadsPerReq: 10 },
  ];
  const main = [(c: number[]) => ({ bytes: 32 << 10, missesPerReq: c[0] * 0.5 + c[1] * 0.5 })];
  const partCurves = segs.map((r, k) =>
    main.map((f) => f(k === 0 ? [r.loadsPerReq, 0] : [0, r.loadsPerReq])),
  );
  const got = main.map((f) => f([10, 10]));
  const want = [{ bytes: 32 << 10, missesPerReq: 5 }];
  const bins = binsFromCurve(SIZES.map((bytes, k) => ({ bytes, missesPerReq: 100 - k }))).slice(0, 2);
  const shape = {
    want: [{ bytes: 24 << 10, missesPerReq: 8 }],
    got: [{ bytes: 24 << 10, missesPerReq: 8 }],
    skeleton: [],
    parts: [[{ bytes: 24 << 10, missesPerReq: 8 }], [{ bytes: 24 << 10, missesPerReq: 0 }]],
  };
  const f = { hotLines: 0, hotFootprint: 0 };
  const side = (sh?: typeof shape) =>
    nextSide(bins, segs, partCurves, want, got, [], 0.01, 0.05, 1, f, true, sh);
  const without = side();
  const withShape = side(shape);
  assert.ok(without.loads[0] < 6, `${without.loads}`);
  assert.ok(withShape.loads[0] > 9 && withShape.loads[1] < 5.5, `${withShape.loads}`);
});

test("a clone's functions are its body's parts: a segment's blocks its own, every code group one part", () => {
  assert.equal(partOf('twin_code_3_blocks'), 'twin_code_3');
  assert.equal(partOf('twin_code_3'), 'twin_code_3');
  assert.equal(partOf('twin_code_conflict_0_blocks'), 'twin_code_conflict');
  assert.equal(partOf('twin_code_conflict_4'), 'twin_code_conflict');
  assert.equal(partOf('twin_data_conflict'), 'twin_data_conflict');
  assert.equal(partOf('twin_data_12'), 'twin_data_12');
  assert.equal(partOf('main'), null);
});

test('a ring whose accesses miss past its curve keeps its size where its bin lies past the curve too', () => {
  // The open bin past 32 MiB: its target twice its bound, 64 MiB. Every load of its ring
  // misses at 32 MiB, so its median lies somewhere past the curve: read as the curve's end, it
  // doubled the ring at every step (nginx-site: 992,402 lines to 2.4 and 3.3 million).
  const sizes = [8, 16, 32].map((k) => k << 20);
  const bins = binsFromCurve(sizes.map((bytes, k) => ({ bytes, missesPerReq: 3 - k })));
  const open = bins.length - 1;
  assert.equal(bins[open].hi, null);
  const rings = bins.map((_, k) => ({ lines: k === open ? 1_000_000 : 0, loadsPerReq: k === open ? 1 : 0 }));
  const curve = sizes.map((bytes) => ({ bytes, missesPerReq: 1 }));
  const curves = rings.map((_, k) => (k === open ? curve : null));
  const next = nextSide(bins, rings, curves, curve, curve, [], 0.01, 0.05, 1, {
    hotLines: 0,
    hotFootprint: 0,
  });
  assert.equal(next.lines[open], 1_000_000);
});

test('a part that stays (the part per connection) keeps its size and loads, the rings solved around its misses', () => {
  // Rings of the 8-16 and 16-32 KiB bins and the connections' part, 10 loads a request each;
  // the part misses up to 32 KiB. 16 KiB is 5 misses over: only the second ring can give them
  // up (the part stays), and the first takes back the 8 KiB ones. Resized by its distance, the
  // part halved its lines.
  const sizes = [8, 16, 32, 64].map((k) => k << 10);
  const bins = binsFromCurve(sizes.map((bytes, k) => ({ bytes, missesPerReq: 40 - 10 * k })));
  const parts = [
    { lines: 150, loadsPerReq: 10 },
    { lines: 300, loadsPerReq: 10 },
    { lines: 800, loadsPerReq: 10 },
  ];
  const miss = [
    [10, 0, 0, 0],
    [10, 10, 0, 0],
    [10, 10, 10, 0],
  ];
  const curves = miss.map((m) => sizes.map((bytes, j) => ({ bytes, missesPerReq: m[j] })));
  const got = sizes.map((bytes, j) => ({ bytes, missesPerReq: miss.reduce((s, m) => s + m[j], 0) }));
  const want = sizes.map((bytes, j) => ({ bytes, missesPerReq: [30, 15, 10, 0][j] }));
  const f = { hotLines: 0, hotFootprint: 0 };
  const side = (fixed: boolean[]) =>
    nextSide(
      [bins[0], bins[1], bins[1]],
      parts,
      curves,
      want,
      got,
      [],
      0.01,
      0.05,
      1,
      f,
      false,
      undefined,
      1,
      false,
      fixed,
    );
  const kept = side([false, false, true]);
  assert.equal(kept.lines[2], 800);
  assert.equal(kept.loads[2], 10);
  assert.ok(Math.abs(kept.loads[1] - 5) < 0.1 && Math.abs(kept.loads[0] - 15) < 0.1, `${kept.loads}`);
  assert.ok(side([false, false, false]).lines[2] < 500);
});
