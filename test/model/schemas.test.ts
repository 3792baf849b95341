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
  assert.equal(w.valgrindWarmup, 0);
  assert.throws(
    () =>
      parseWith(
        Workload,
        { protocol: 'resp', requests: [{ op: 'get', share: 1 }], loads: [1], valgrindWarmup: -5 },
        'workload',
      ),
    /at valgrindWarmup/,
  );
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

test('redis data-structure ops: a resp workload takes them, another protocol is refused naming op and protocol', () => {
  const ops = ['get', 'set', 'incr', 'lpush', 'lrange', 'hset', 'hget'];
  const w = parseWith(
    Workload,
    { protocol: 'resp', requests: ops.map((op) => ({ op, share: 1, valueSize: 10 })), loads: [100] },
    'w',
  );
  assert.deepEqual(
    w.requests.map((r) => r.op),
    ops,
  );
  assert.throws(
    () =>
      parseWith(
        Workload,
        {
          protocol: 'memcached',
          requests: [
            { op: 'get', share: 1 },
            { op: 'lpush', share: 1 },
          ],
          loads: [100],
        },
        'w',
      ),
    (e: Error) =>
      e instanceof TwinError &&
      /op lpush .*protocol memcached has no lpush at requests\.1\.op/.test(e.message) &&
      !e.message.includes('\n'),
  );
  assert.throws(
    () => parseWith(Workload, { protocol: 'http', requests: [{ op: 'hget', share: 1 }], loads: [1] }, 'w'),
    /http has no hget/,
  );
});

test('keyDist: uniform by default, zipf:S with S > 0, anything else refused', () => {
  const base = { protocol: 'resp', requests: [{ op: 'get', share: 1 }], loads: [100] };
  assert.equal(parseWith(Workload, base, 'w').keyDist, 'uniform');
  assert.equal(parseWith(Workload, { ...base, keyDist: 'zipf:0.99' }, 'w').keyDist, 'zipf:0.99');
  assert.equal(parseWith(Workload, { ...base, keyDist: 'zipf:1.2e0' }, 'w').keyDist, 'zipf:1.2e0');
  for (const keyDist of ['zipf:-1', 'zipf:0', 'zipf:', 'zipf:1x', 'pareto', 'Uniform'])
    assert.throws(
      () => parseWith(Workload, { ...base, keyDist }, 'w'),
      (e: Error) =>
        e instanceof TwinError &&
        e.message.includes(`${JSON.stringify(keyDist)} is no key distribution`) &&
        /at keyDist/.test(e.message),
      keyDist,
    );
});
