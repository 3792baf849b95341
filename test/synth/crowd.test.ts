import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PortableCpu } from '../../src/model/index.js';
import { nextCrowd } from '../../src/tune/solve.js';
import {
  CROWD_SHAPES,
  CROWD_WAYS,
  cellMisses,
  crowdCells,
  fitCrowd,
  CONFLICT_BURST,
  groupMissShare,
  groupRefills,
  nnls,
  randomMisses,
  type CrowdGroup,
} from '../../src/synth/crowd.js';

test('a group misses where its lines in a set outnumber the ways', () => {
  // 4 lines 128 KiB apart share one set of every cache of 2,048 sets or fewer.
  for (const sets of [64, 512, 2048]) {
    assert.equal(groupMissShare(4, 131072, sets, 3), 1);
    assert.equal(groupMissShare(4, 131072, sets, 4), 0);
  }
  // 6 lines 4 KiB apart: one set of 64 sets; over 256 sets, four sets of 2, 2, 1, 1 lines.
  assert.equal(groupMissShare(6, 4096, 64, 5), 1);
  assert.equal(groupMissShare(6, 4096, 256, 1), 4 / 6);
  assert.equal(groupMissShare(6, 4096, 256, 2), 0);
  assert.equal(groupMissShare(5, 4096, 256, 1), 2 / 5);
});

test('random lines miss as the Poisson tail of their distance over the sets', () => {
  assert.ok(randomMisses(10, 1, 1 << 20, 1) < 1e-4);
  assert.ok(randomMisses(1e6, 1, 64, 16) > 0.999);
  // More ways miss less; the tail at one way is 1 - e^-lambda.
  assert.ok(Math.abs(randomMisses(64, 1, 64, 1) - (1 - Math.exp(-1))) < 1e-12);
  assert.ok(randomMisses(64, 1, 64, 2) < randomMisses(64, 1, 64, 1));
});

test('non-negative least squares solves an exact system and keeps a negative direction at zero', () => {
  const cols = [
    [1, 0, 0],
    [0, 1, 0],
    [1, 1, 1],
  ];
  const x = nnls(cols, [3, 4, 2]);
  assert.ok(x.every((v) => v >= 0));
  const r = [0, 1, 2].map((i) => cols.reduce((s, c, j) => s + c[i] * x[j], 0));
  assert.deepEqual(
    r.map((v) => Math.round(v * 1e6) / 1e6),
    [3, 4, 2],
  );
  assert.deepEqual(nnls([[1, 1]], [-1, -2]), [0]);
});

test('a fit recovers planted groups from their misses at the crowd cells', () => {
  const table = { lo: 2, hi: 11, counts: [] as number[][] };
  const cells = crowdCells(table);
  const planted: CrowdGroup[] = [
    { lines: 4, stride: 131072, loadsPerReq: 17 },
    { lines: 6, stride: 4096, loadsPerReq: 9 },
    // More lines a set than an 8-way cache holds: misses at 8 ways, none at 16.
    { lines: 12, stride: 16384, loadsPerReq: 20 },
  ];
  const misses = (gs: CrowdGroup[]) =>
    cells.map((c) =>
      gs.reduce((a, g) => a + g.loadsPerReq * groupMissShare(g.lines, g.stride, c.sets, c.ways), 0),
    );
  const want = misses(planted);
  const fit = fitCrowd(
    cells,
    want,
    cells.map(() => 1),
  );
  const got = misses(fit);
  for (let i = 0; i < cells.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-3, `cell ${i}`);
  assert.ok(CROWD_SHAPES.every((g) => g.lines <= CROWD_WAYS));
  // Nothing wanted: no group.
  assert.deepEqual(
    fitCrowd(
      cells,
      cells.map(() => 0),
      cells.map(() => 1),
    ),
    [],
  );
});

test("the code side's groups are fitted to the code table, as the data side's to the data table", () => {
  // A reuse table of a group of 5 lines 16 KiB apart, 12 uses a request in bursts: in a cache of
  // S sets its lines lie in m = min(5, S x 64 / 16 KiB) sets, and a use finds its line behind
  // the others of its set (at LRU position n - 1 of a set of n of its lines).
  const lo = 2;
  const hi = 11;
  const table = (uses: number) => ({
    lo,
    hi,
    counts: Array.from({ length: hi - lo + 1 }, (_, i) => {
      const m = Math.min(5, Math.max(1, (2 ** (lo + i) * 64) / 16384));
      const n = Math.floor(5 / m);
      const fuller = 5 - n * m; // sets of n + 1 lines
      const row = new Array<number>(17).fill(0);
      row[n] += (uses * fuller * (n + 1)) / 5;
      if (n > 0) row[n - 1] += (uses * (m - fuller) * n) / 5;
      return row;
    }),
  });
  const empty = { lo, hi, counts: Array.from({ length: hi - lo + 1 }, () => new Array<number>(17).fill(0)) };
  const cpu = (I: typeof empty, D: typeof empty) =>
    ({ insnsPerReq: 5000, reuse: { I, D, U: empty, UI: empty } }) as unknown as PortableCpu;
  const original = cpu(table(12), empty);
  const clone = cpu(empty, empty);
  const code = nextCrowd(original, clone, null, [], 1, 'I');
  const cells = crowdCells(table(12));
  const misses = (gs: CrowdGroup[]) =>
    cells.map((c) =>
      gs.reduce((a, g) => a + g.loadsPerReq * groupMissShare(g.lines, g.stride, c.sets, c.ways), 0),
    );
  const want = cells.map((c) => cellMisses(table(12), c));
  misses(code).forEach((v, i) =>
    assert.ok(Math.abs(v - want[i]) < 0.05, `cell ${i}: ${v} against ${want[i]}`),
  );
  // The data side sees no crowding in its own table.
  assert.deepEqual(nextCrowd(original, clone, null, [], 1, 'D'), []);
});

/** Misses of one set of an LRU cache of `ways` ways over `requests` requests: each request
 *  uses `background` lines of the rest in turn, and every `every` requests a burst of
 *  CONFLICT_BURST uses goes round the group's `g` lines of the set (none with g = 0). */
function setMisses(ways: number, background: number, g: number, every: number, requests: number) {
  const stack: number[] = [];
  let misses = 0;
  const use = (line: number) => {
    const at = stack.indexOf(line);
    if (at < 0 || at >= ways) misses++;
    if (at >= 0) stack.splice(at, 1);
    stack.unshift(line);
  };
  for (let r = 0; r < requests; r++) {
    for (let k = 0; k < background; k++) use(k);
    if (g && r % every === every - 1) for (let u = 0; u < CONFLICT_BURST; u++) use(1000 + (u % g));
  }
  return misses;
}

test("a group's bursts cost its own lines' refills and the rest's they push out, as an LRU set simulated", () => {
  // One set (a group of g lines 128 KiB apart), b lines of the rest reused every request,
  // a burst every 4 requests: the misses the group adds, per burst, against the model, within
  // a line and a half either way.
  const requests = 400;
  const bursts = requests / 4;
  for (const [ways, b, g] of [
    [11, 8, 2],
    [11, 8, 3],
    [11, 8, 4],
    [11, 8, 5],
    [14, 10, 7],
    [14, 10, 4],
    [14, 10, 5],
    [8, 12, 4],
    [16, 10, 4],
    [4, 2, 3],
  ]) {
    const added = (setMisses(ways, b, g, 4, requests) - setMisses(ways, b, 0, 4, requests)) / bursts;
    const r = groupRefills(g, 131072, 64, ways, b);
    assert.ok(Math.abs(added - (r.own + r.rest)) <= 1.5, `${ways}/${b}/${g}: ${added} vs ${r.own}+${r.rest}`);
  }
  // A group that overflows the set alone misses every use; its refills are not counted again.
  assert.deepEqual(groupRefills(9, 131072, 64, 8, 3), { own: 0, rest: 0 });
  // Over four sets (16 lines 2 KiB apart in 128 sets), each set its four lines and 10 of the
  // rest, 11 ways: every set's 11 lines.
  const four = groupRefills(16, 2048, 128, 11, 10);
  assert.ok(Math.abs(four.own + four.rest - 44) < 1e-9);
  // Half the sets one line fuller: half way between.
  const half = groupRefills(4, 131072, 64, 11, 7.5);
  assert.ok(Math.abs(half.own + half.rest - 11 / 2) < 1e-9);
});

test('a fit takes no group that crowds no cell, whatever its refills would add', () => {
  // A few misses wanted everywhere, the rest's lines overflowing every set: two lines one set
  // period apart would add two misses a burst at every cell, and crowd none.
  const cells = [16, 32, 64, 128].flatMap((sets) => [2, 4, 8].map((ways) => ({ sets, ways })));
  const fit = fitCrowd(
    cells,
    cells.map(() => 3),
    cells.map(() => 1),
    0.05,
    cells.map((c) => 2 * c.ways),
  );
  for (const g of fit)
    assert.ok(
      cells.some((c) => groupMissShare(g.lines, g.stride, c.sets, c.ways) > 0),
      `${g.lines} x ${g.stride}`,
    );
});
