/* The body's part per connection: read off the original measured again with more connections
 * (the accesses whose reuse distance grows with them), and taken out of the bin they were in. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connPart, NO_CONN, withoutConn } from '../../src/synth/conn.js';
import { binsFromCurve } from '../../src/synth/rings.js';
import type { CurvePoint, PortableCpu, Profile } from '../../src/model/index.js';

const KIB = 1024;
const curve = (m: number[]): CurvePoint[] => m.map((x, i) => ({ bytes: 8 * KIB * 2 ** i, missesPerReq: x }));

/** A profile body whose original misses `base` at 8, 16, ... KiB, and `wide` with more
 *  connections (none: not measured). */
function body(base: number[], wide?: number[], connections = 8): Pick<Profile, 'body' | 'source'> {
  const cpu = { insnsPerReq: 3000, dataCurve: curve(base) } as unknown as PortableCpu;
  return {
    source: { connections } as Profile['source'],
    body: {
      original: cpu,
      skeleton: null,
      ...(wide && {
        moreConnections: {
          connections: 32,
          cpu: { ...cpu, dataCurve: curve(wide) } as unknown as PortableCpu,
        },
      }),
    },
  };
}

test('accesses that move past a size with more connections make the part, out of the bin below it', () => {
  // Eight accesses a request reused within 32 KiB on the workload's connections, past 64 KiB
  // on four times as many (the original's misses rise at 32 and 64 KiB, not at 128).
  const base = [80, 53, 24, 9, 5, 2];
  const p = body(base, [80.5, 53.6, 32.2, 14, 5.2, 2]);
  const bins = binsFromCurve(curve(base));
  const c = connPart(p, bins);
  assert.equal(c.bin, 1, 'the bin from 16 to 32 KiB');
  assert.ok(Math.abs(c.loadsPerReq - 8.2) < 1e-9);
  assert.equal(c.lines, 8);
  const left = withoutConn(bins, c);
  assert.ok(Math.abs(left[1].perReq - (bins[1].perReq - 8.2)) < 1e-9);
  assert.deepEqual(
    left.filter((_, i) => i !== 1),
    bins.filter((_, i) => i !== 1),
  );
});

test('accesses that rise at two sizes were in the bin below the first', () => {
  // Eight accesses moved from within 32 KiB to past 64 KiB: the misses at 64 KiB rise most.
  const base = [99, 65, 25, 8, 3.5, 2];
  const bins = binsFromCurve(curve(base));
  const c = connPart(body(base, [79, 55.7, 32.2, 16.1, 4.9, 2.3]), bins);
  assert.equal(c.bin, 1, 'the bin from 16 to 32 KiB');
  assert.ok(Math.abs(c.loadsPerReq - 8.1) < 1e-9);
});

test('differences within the measurements noise, or no second measurement, make none', () => {
  const base = [80, 53, 24, 9, 5, 2];
  // Up to 5% more (pair-method noise) and under half a miss per 1,000 instructions.
  assert.deepEqual(connPart(body(base, [83, 55, 25, 9.4, 5.2, 2.6]), binsFromCurve(curve(base))), NO_CONN);
  assert.deepEqual(connPart(body(base, [78, 50, 23, 8, 4.9, 2]), binsFromCurve(curve(base))), NO_CONN);
  assert.deepEqual(connPart(body(base), binsFromCurve(curve(base))), NO_CONN);
});

test('the part takes no more than its bin holds', () => {
  const base = [80, 30, 28, 9, 5, 2];
  const bins = binsFromCurve(curve(base));
  const c = connPart(body(base, [80, 30, 40, 9, 5, 2]), bins);
  assert.equal(c.bin, 1);
  assert.equal(c.loadsPerReq, 2, 'the 16-32 KiB bin holds 2 accesses a request');
  assert.equal(withoutConn(bins, c)[1].perReq, 0);
});

test('none where a round of every connection touches more than the bin holds', () => {
  // The same rise as the first test's: on 8 connections a round touches about 30 KiB (within
  // the 16-32 KiB bin); on 24, past it.
  const base = [80, 53, 24, 9, 5, 2];
  const wide = [80.5, 53.6, 32.2, 14, 5.2, 2];
  const bins = binsFromCurve(curve(base));
  assert.equal(connPart(body(base, wide, 8), bins).bin, 1);
  assert.deepEqual(connPart(body(base, wide, 24), bins), NO_CONN);
});
