import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progress } from '../../src/report/progress.js';

/** What `f` writes to stderr and stdout (stderr not a terminal, as under CI). */
function capture(f: () => void): { err: string; out: string } {
  const err: string[] = [];
  const out: string[] = [];
  const [e, o, tty] = [process.stderr.write, process.stdout.write, process.stderr.isTTY];
  process.stderr.isTTY = false;
  process.stderr.write = ((s: string) => err.push(s) > 0) as typeof process.stderr.write;
  process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write;
  try {
    f();
  } finally {
    process.stderr.write = e;
    process.stdout.write = o;
    process.stderr.isTTY = tty;
  }
  return { err: err.join(''), out: out.join('') };
}

test('progress: one line per stage with its elapsed time, steps only when verbose, every line within 120 columns', () => {
  let times: { stage: string; seconds: number }[] = [];
  const plain = capture(() => {
    const p = progress();
    p.stage('profile', 'tracing at 500 requests/s');
    p.step('a step that a plain log does not show');
    p.print('a result');
    p.stage('tune', 'x'.repeat(300));
    times = p.end();
  });
  const lines = plain.err.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^\[twin +0s\] profile: tracing at 500 requests\/s$/);
  assert.ok(lines.every((l) => l.length <= 120));
  assert.equal(plain.out, 'a result\n');
  assert.deepEqual(
    times.map((t) => t.stage),
    ['profile', 'tune'],
  );
  assert.ok(times.every((t) => t.seconds >= 0 && t.seconds < 5));

  const verbose = capture(() => {
    const p = progress({ verbose: true });
    p.stage('profile', 'tracing');
    p.step('a step');
    p.end();
  });
  assert.match(verbose.err, /\] {3}a step\n$/);
  assert.equal(
    capture(() => {
      const p = progress({ quiet: true });
      p.stage('profile', 'tracing');
      p.end();
    }).err,
    '',
  );
});
