/* Data rings walked in runs: how long a ring's runs are (from the share of the original's
 * misses that are sequential, bin by bin), and the layout in the runtime (runtime/ring.h),
 * compiled and walked: one cycle through every line, in runs of consecutive lines. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_RUN, ringRuns, sequentialShare } from '../../src/synth/runs.js';
import type { ReuseStreamTable, ReuseTable } from '../../src/model/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A unified-stream table whose data accesses miss every cache below `bytes` (16 ways) and
 *  hit every larger one, `n` a request, a share `seq` of them sequential. */
function table(bytes: number, n: number, seq: number): ReuseTable {
  const stream = (x: number): ReuseStreamTable => ({
    lo: 6,
    hi: 17,
    counts: Array.from({ length: 12 }, (_, i) => {
      const row = new Array<number>(17).fill(0);
      row[64 * 16 * 2 ** (6 + i) < bytes ? 16 : 0] = x;
      return row;
    }),
  });
  const l1 = { lo: 2, hi: 11, counts: Array.from({ length: 10 }, () => new Array<number>(17).fill(0)) };
  return { I: l1, D: l1, U: stream(n), UI: stream(0), US: stream(n * seq) };
}

test('a ring beyond the L1s walks runs as long as its bin is sequential; nearer rings, and tables without the count, walk a random cycle', () => {
  // 100 data accesses a request reused beyond 1 MiB, three in four sequential: runs of 4.
  const t = table(2 << 20, 100, 0.75);
  assert.ok(Math.abs(sequentialShare(t, 512 << 10, 4 << 20)! - 0.75) < 1e-9);
  const bins = [
    { lo: 4096 / 64, hi: 8192 / 64, perReq: 100 }, // an L1 bin
    { lo: (512 << 10) / 64, hi: (4 << 20) / 64, perReq: 100 },
    { lo: (4 << 20) / 64, hi: null, perReq: 0 }, // nothing there: the share beyond lo (none)
  ];
  assert.deepEqual(ringRuns(t, bins), [1, 4, 1]);
  // Every access sequential: a page's lines; none: a random cycle; no US count: the same.
  assert.deepEqual(ringRuns(table(2 << 20, 100, 1), bins).slice(1, 2), [MAX_RUN]);
  assert.deepEqual(ringRuns(table(2 << 20, 100, 0), bins).slice(1, 2), [1]);
  const old = { ...t, US: undefined };
  assert.deepEqual(ringRuns(old, bins), [1, 1, 1]);
  assert.deepEqual(ringRuns(undefined, bins), [1, 1, 1]);
});

test("the runtime's ring is one cycle through every line, in runs of consecutive lines", () => {
  const dir = mkdtempSync(join(tmpdir(), 'twin-ring-'));
  const src = join(dir, 'ring.c');
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    src,
    `#include <stdio.h>
#include <stdlib.h>
#include "ring.h"
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  uint64_t lines = strtoull(argv[1], 0, 10), run = strtoull(argv[2], 0, 10), rng = 0x9e3779b97f4a7c15u;
  uint64_t *ring = aligned_alloc(64, lines * 64);
  body_ring_init(ring, lines, run, &rng);
  char *seen = calloc(lines, 1);
  uint64_t *p = ring, steps = 0, next = 0;
  do {
    uint64_t i = (uint64_t)(p - ring) / 8;
    if (seen[i]++) break;
    uint64_t *q = (uint64_t *)(uintptr_t)*p;
    next += q == p + 8;
    p = q;
    steps++;
  } while (p != ring);
  printf("%llu %llu\\n", (unsigned long long)steps, (unsigned long long)next);
  return 0;
}
`,
  );
  const exe = join(dir, 'ring');
  execFileSync('gcc', [
    '-std=gnu11',
    '-O2',
    '-Wall',
    '-Wextra',
    '-Werror',
    `-I${join(ROOT, 'runtime')}`,
    '-o',
    exe,
    src,
  ]);
  for (const [lines, run] of [
    [1000, 16],
    [1000, 1],
    [65536, 64],
    [7, 3],
    [5, 64],
  ]) {
    const [steps, next] = execFileSync(exe, [String(lines), String(run)], { encoding: 'utf8' })
      .trim()
      .split(' ')
      .map(Number);
    assert.equal(steps, lines, `${lines} lines in runs of ${run}: a cycle of ${steps}`);
    // Within a run every step goes to the next line; a jump between runs lands there by chance.
    const runs = Math.ceil(lines / Math.min(run, lines));
    assert.ok(next >= lines - runs, `${lines}/${run}: ${next} steps to the next line`);
    assert.ok(
      next <= lines - runs + Math.max(2, 0.05 * runs),
      `${lines}/${run}: ${next} steps to the next line`,
    );
  }
});
