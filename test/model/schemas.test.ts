import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  Body,
  Comparison,
  Measurement,
  Profile,
  Workload,
  parseWith,
  TwinError,
} from '../../src/model/index.js';
import { readProfile } from '../../src/model/index.js';
import { overhead } from '../../src/tune/budget.js';
import { bodyPlan } from '../../src/synth/body.js';

const profileText = readFileSync(
  new URL('../../../test/fixtures/profile-memcached.json', import.meta.url),
  'utf8',
);
const tmp = mkdtempSync(join(tmpdir(), 'twin-test-'));

test('a real profile round-trips through the schema', () => {
  const p = parseWith(Profile, JSON.parse(profileText), 'profile');
  assert.deepEqual(parseWith(Profile, JSON.parse(JSON.stringify(p)), 'profile'), p);
  // Its body section: the original's and the skeleton's curves and mixes, whole.
  assert.equal(p.body.original.dataCurve.length, 11);
  assert.equal(p.body.original.codeCurve.length, 11);
  assert.ok(p.body.original.mix && p.body.skeleton?.mix);
  assert.deepEqual(Body.parse(JSON.parse(JSON.stringify(p.body))), p.body);
});

test('a profile of another version is refused in one line saying what to do', () => {
  const f = join(tmp, 'v1.json');
  writeFileSync(f, JSON.stringify({ ...JSON.parse(profileText), schemaVersion: 1 }));
  assert.throws(
    () => readProfile(f),
    (e: Error) =>
      e instanceof TwinError && /schemaVersion 1.*version 2/.test(e.message) && !e.message.includes('\n'),
  );
});

test('a profile of the wrong shape names the field', () => {
  const p = JSON.parse(profileText);
  p.skeleton.workers = -3;
  const f = join(tmp, 'bad.json');
  writeFileSync(f, JSON.stringify(p));
  assert.throws(
    () => readProfile(f),
    (e: Error) => e instanceof TwinError && /at skeleton\.workers/.test(e.message),
  );
  writeFileSync(f, '{not json');
  assert.throws(() => readProfile(f), /is not JSON/);
});

test('workloads: defaults filled, unknown protocol and negative share refused with the field', () => {
  const w = parseWith(
    Workload,
    { protocol: 'resp', requests: [{ op: 'get', share: 1 }], loads: [100] },
    'workload',
  );
  assert.equal(w.connections, 8);
  assert.equal(w.duration, 5);
  assert.throws(
    () =>
      parseWith(Workload, { protocol: 'smtp', requests: [{ op: 'get', share: 1 }], loads: [1] }, 'workload'),
    /at protocol/,
  );
  assert.throws(
    () =>
      parseWith(Workload, { protocol: 'http', requests: [{ op: 'get', share: -1 }], loads: [1] }, 'workload'),
    /share must be a positive number at requests\.0\.share/,
  );
});

test('the JSON Schemas are generated from the zod schemas', () => {
  for (const s of [Profile, Measurement, Comparison, Workload]) {
    const js = z.toJSONSchema(s, { io: 'input' }) as { type?: string; properties?: object };
    assert.equal(js.type, 'object');
    assert.ok(js.properties);
  }
});

test('a tuned profile reads back: its knobs carry the overhead the tuner measured, by mix class', () => {
  const p = parseWith(Profile, JSON.parse(profileText), 'profile');
  const mixOverhead = overhead(p, bodyPlan(p), p.body.original);
  assert.ok(mixOverhead && Object.keys(mixOverhead).length > 5);
  const tuned = { ...p, knobs: { ...p.knobs, mixOverhead } };
  assert.deepEqual(
    parseWith(Profile, JSON.parse(JSON.stringify(tuned)), 'profile').knobs.mixOverhead,
    mixOverhead,
  );
});

test('a workload takes its command as a string or a list, its duration in seconds or with a unit', () => {
  const base = { protocol: 'memcached', requests: [{ op: 'get', share: 1 }], loads: [100] };
  const w = parseWith(
    Workload,
    { ...base, command: ['memcached', '-p', '{port}', '-m', 64, "it's"], duration: '10s' },
    'w',
  );
  assert.equal(w.command, "memcached -p {port} -m 64 'it'\\''s'");
  assert.equal(w.duration, 10);
  assert.equal(parseWith(Workload, { ...base, duration: '500ms' }, 'w').duration, 0.5);
  assert.equal(parseWith(Workload, { ...base, duration: '2m' }, 'w').duration, 120);
  assert.equal(parseWith(Workload, { ...base, duration: 3 }, 'w').duration, 3);
  assert.throws(
    () => parseWith(Workload, { ...base, duration: 'ten' }, 'w'),
    /"ten" is no duration.*500ms, 10s, 2m.*at duration/,
  );
  assert.throws(() => parseWith(Workload, { ...base, duration: '10h' }, 'w'), /no duration/);
  assert.throws(
    () => parseWith(Workload, { ...base, command: [] }, 'w'),
    /the command is empty: give a string or a list of arguments at command/,
  );
});
