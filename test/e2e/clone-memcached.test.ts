import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { syscallTable } from '../../src/collect/syscalls.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TWIN = join(ROOT, 'dist/src/cli/index.js');
const out = mkdtempSync(join(tmpdir(), 'twin-e2e-'));

/** Printable runs of at least `min` bytes, like strings(1). */
export function printableRuns(buf: Buffer, min: number): string[] {
  const runs: string[] = [];
  let cur = '';
  for (const b of buf) {
    if (b >= 32 && b < 127) cur += String.fromCharCode(b);
    else {
      if (cur.length >= min) runs.push(cur);
      cur = '';
    }
  }
  if (cur.length >= min) runs.push(cur);
  return runs;
}

/** The strings of an ELF section, read with objcopy. */
function sectionStrings(binary: string, section: string, min: number): string[] {
  const dump = join(out, `${section.replace(/\W/g, '')}.bin`);
  execFileSync('objcopy', ['-O', 'binary', `--only-section=${section}`, binary, dump]);
  return printableRuns(readFileSync(dump), min);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

// The time limit only stops a hung run; how long cloning takes is a benchmark's figure.
test(
  'twin clone clones memcached end to end, and the clone answers every request',
  { timeout: 600_000 },
  () => {
    const r = spawnSync(
      'node',
      [
        TWIN,
        'clone',
        '-q',
        '--tune-iterations',
        '3',
        '--workload',
        join(ROOT, 'test/fixtures/memcached-short.yaml'),
        '--out',
        out,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const c = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8'));
    const row = (m: string) => c.rows.find((x: { metric: string }) => x.metric === m);
    assert.equal(row('errors.count').clone, 0);
    assert.equal(row('threads.count').clone, row('threads.count').original);
    const rel = (m: string) => Math.abs(row(m).clone - row(m).original) / row(m).original;
    assert.ok(rel('net.bytes_per_req') < 0.02, `net bytes ${JSON.stringify(row('net.bytes_per_req'))}`);
    // memcached's logger thread adapts its sleep (700 to 950 wake-ups/s at 500 requests/s from
    // one run to the next): a third of its calls per request, so this short run allows 15%;
    // the demo's three rounds per load point are held to 10%.
    assert.ok(rel('syscalls.per_req') < 0.15, `syscalls ${JSON.stringify(row('syscalls.per_req'))}`);
    // Its LRU maintainer's time-driven work is about two thirds of its instructions under
    // Valgrind: in this short run (500 requests a run) memcached's own instructions per request
    // came to 6,300 to 7,935 over eight runs, the profile's to 7,075 to 7,527. The tuner meets
    // the profile's; 20% holds that spread, and fails a clone whose body is missing (its
    // skeleton alone: about 2,400).
    assert.ok(rel('insns.per_req') < 0.2, `instructions ${JSON.stringify(row('insns.per_req'))}`);
  },
);

test("neither the profile nor the clone carries memcached's strings or symbols", () => {
  const memcached = execFileSync('sh', ['-c', 'command -v memcached'], { encoding: 'utf8' }).trim();
  const twinLoad = readFileSync(join(ROOT, 'loadgen/build/twin-load'));
  // Strings of memcached's .rodata, less the protocol's own vocabulary: what Twin's load
  // generator (which never saw memcached) also contains is the public protocol. The same
  // check run on a profile holding the target's thread names or paths fails.
  // The C library's strings are the platform's ("/dev/null"), not memcached's either.
  const libc = execFileSync('sh', ['-c', 'ldd "$1" | awk \'/libc\\.so/ {print $3}\'', 'sh', memcached], {
    encoding: 'utf8',
  }).trim();
  const protocol = new Set([...printableRuns(twinLoad, 4), ...printableRuns(readFileSync(libc), 4)]);
  const own = [...new Set(sectionStrings(memcached, '.rodata', 8).map((s) => s.trim()))]
    .filter((s) => s.length >= 8)
    .filter((s) => ![...protocol].some((p) => p.includes(s)));
  assert.ok(own.length > 100, `only ${own.length} strings found in memcached's .rodata`);
  const symbols = execFileSync('nm', ['-D', '--defined-only', memcached], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[2])
    .filter((s): s is string => !!s && s.length >= 6 && !s.startsWith('_') && !s.includes('@'));
  // System call names are the kernel's public interface: profiles record calls by name.
  const kernel = new Set(syscallTable().values());
  const needles = [...own, ...symbols].filter((n) => !kernel.has(n));
  // memcached names its threads from .rodata: a profile that kept thread names would fail.
  assert.ok(needles.includes('mc-worker'));
  const files = [join(out, 'profile.json'), ...filesUnder(join(out, 'clone'))];
  for (const f of files) {
    const text = readFileSync(f).toString('latin1');
    for (const n of needles) assert.ok(!text.includes(n), `${f} contains memcached's "${n}"`);
  }
});
