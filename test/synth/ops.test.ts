import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Profile, type AloneCpu, type PortableCpu } from '../../src/model/index.js';
import { bodyPlan, typeFixedInsns } from '../../src/synth/body.js';
import { blockCounts, mixCounts } from '../../src/synth/mix.js';
import { generateClone } from '../../src/generate/index.js';
import { buildClone } from '../../src/generate/build.js';
import { skeletonOnly } from '../../src/tune/skeleton.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = Profile.parse(
  JSON.parse(readFileSync(join(ROOT, 'test/fixtures/profile-memcached.json'), 'utf8')),
);

/** The profile's work, its instructions and every curve's misses times `insns` and `misses`. */
function scaled(o: PortableCpu, insns: number, misses: number): AloneCpu {
  const curve = (c: PortableCpu['dataCurve']) =>
    c.map((q) => ({ ...q, missesPerReq: q.missesPerReq * misses }));
  return {
    insnsPerReq: o.insnsPerReq * insns,
    dataCurve: curve(o.dataCurve),
    codeCurve: curve(o.codeCurve),
    conflict: {
      ...o.conflict,
      dataMissesPerReq: o.conflict.dataMissesPerReq * misses,
      codeMissesPerReq: o.conflict.codeMissesPerReq * misses,
    },
    branchMissesPerReq: o.branchMissesPerReq * misses,
  };
}

const o = fixture.body.original;
const withAlone: Profile = {
  ...fixture,
  requests: [
    { ...fixture.requests[0], alone: scaled(o, 0.9, 0.8) },
    { ...fixture.requests[1], alone: scaled(o, 1.6, 2) },
  ],
};

test('a profile of one type, or of types not measured alone, plans one body for all', () => {
  assert.deepEqual(bodyPlan(fixture).ops, []);
  assert.deepEqual(bodyPlan({ ...withAlone, requests: [withAlone.requests[0]] }).ops, []);
});

test("request types' multiples average to one under the profiled mix, and each type's instructions follow its own", () => {
  const plan = bodyPlan(withAlone);
  const shares = withAlone.requests.map((r) => r.share);
  const mean = (f: (i: number) => number) => shares.reduce((a, s, i) => a + s * f(i), 0);
  const [get, set] = plan.ops;
  for (const [what, f] of [
    ['mix', (i: number) => plan.ops[i].mix],
    ['hard', (i: number) => plan.ops[i].hard],
    ['crowd', (i: number) => plan.ops[i].crowd],
    ['insns', (i: number) => plan.ops[i].insns],
    ['passes', (i: number) => plan.ops[i].passes],
  ] as const)
    assert.ok(Math.abs(mean(f) - 1) < 1e-9, `${what}: mean ${mean(f)}`);
  plan.rings.forEach((r, b) => {
    const m = mean((i) => plan.ops[i].rings[b]);
    assert.ok(Math.abs(m - 1) < 1e-9, `ring ${b}: mean ${m}`);
    // The type with more misses walks more; no type more than the whole part.
    assert.ok(set.rings[b] >= get.rings[b] && set.rings[b] <= 1 / shares[1] + 1e-9);
  });
  assert.ok(set.hard > get.hard && set.insns > get.insns);
  // Each type's body instructions (every part at its multiple, the mix loop's solved) stand to
  // one another as the types' own work less the skeleton's.
  const total = (c: Record<string, number | undefined>) =>
    Object.values(c).reduce((x, y) => x! + (y ?? 0), 0)!;
  const perBlock = total(blockCounts(plan.blockUnits));
  const insns = (s: (typeof plan.ops)[number]) =>
    typeFixedInsns({ ...plan, perBlock }, s, withAlone.knobs.mixOverhead) +
    s.mix * total(mixCounts(plan.mix));
  const sk = withAlone.body.skeleton!.insnsPerReq;
  const want = (1.6 * o.insnsPerReq - sk) / (0.9 * o.insnsPerReq - sk);
  const got = insns(set) / insns(get);
  assert.ok(
    Math.abs(got / want - 1) < 0.05,
    `set/get body instructions ${got.toFixed(2)}, want ${want.toFixed(2)}`,
  );
});

test(
  "a clone of request types' multiples builds, and so does its skeleton alone",
  { timeout: 60_000 },
  () => {
    const tmp = mkdtempSync(join(tmpdir(), 'twin-ops-'));
    for (const [name, p] of [
      ['body', withAlone],
      ['skeleton', skeletonOnly(withAlone)],
    ] as const) {
      const dir = join(tmp, name);
      assert.equal(generateClone(p, dir).ops.length, 2);
      buildClone(dir);
    }
  },
);
