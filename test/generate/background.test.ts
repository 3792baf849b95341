import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IDLE_BACKGROUND, Profile, Workload, parseWith } from '../../src/model/index.js';
import { generateClone } from '../../src/generate/index.js';
import { buildClone } from '../../src/generate/build.js';
import { cloneLaunchSpec, launchTarget } from '../../src/collect/target.js';
import { runLoad, totalErrors } from '../../src/collect/loadgen.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Each thread's voluntary context switches (a sleep's wake-up each) of process `pid`. */
const switches = (pid: number) =>
  new Map(
    readdirSync(`/proc/${pid}/task`).map((t) => [
      t,
      Number(
        /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'))![1],
      ),
    ]),
  );

test(
  'a background thread past its highest profiled load wakes along its points’ elasticity, not their line',
  { timeout: 60_000 },
  async () => {
    const p = parseWith(
      Profile,
      JSON.parse(readFileSync(join(ROOT, 'test/fixtures/profile-memcached.json'), 'utf8')),
      'profile',
    );
    // 200 wake-ups a second at 500 requests a second, 400 at 2,000: elasticity 1/2. At 8,000,
    // 800 a second along it; 1,200 along the two points' line.
    const last = p.skeleton.background.length - 1;
    p.skeleton.background = p.skeleton.background.map((_, i) =>
      i < last
        ? IDLE_BACKGROUND
        : {
            ...IDLE_BACKGROUND,
            sleep: 'clock_nanosleep',
            periodUs: 3333,
            byLoad: [
              { rps: 500, hz: 200, cpuNsPerSec: 0 },
              { rps: 2000, hz: 400, cpuNsPerSec: 0 },
            ],
          },
    );
    const dir = join(mkdtempSync(join(tmpdir(), 'twin-bg-')), 'clone');
    generateClone(p, dir);
    const w = parseWith(
      Workload,
      {
        protocol: 'memcached',
        connections: 4,
        threads: 2,
        keys: 100,
        keySize: 16,
        requests: [{ op: 'get', share: 1 }],
        loads: [8000],
      },
      'memcached',
    );
    const target = await launchTarget(cloneLaunchSpec(buildClone(dir), w));
    try {
      // At rest only the background thread wakes (133 a second, along the points' line below them).
      const rest0 = switches(target.pid);
      await sleep(1000);
      const rest1 = switches(target.pid);
      const [tid, atRest] = [...rest1]
        .map(([t, n]) => [t, n - (rest0.get(t) ?? n)] as const)
        .sort((a, b) => b[1] - a[1])[0];
      assert.ok(atRest > 60 && atRest < 250, `${atRest} wake-ups a second at rest`);
      let before = 0;
      let t0 = 0;
      const look = setTimeout(() => ((before = switches(target.pid).get(tid)!), (t0 = Date.now())), 1500);
      const r = await runLoad(w, target.port, { rate: 8000, duration: 3, warmup: 0.5 });
      clearTimeout(look);
      const hz = (switches(target.pid).get(tid)! - before) / ((Date.now() - t0) / 1000);
      assert.equal(totalErrors(r), 0, JSON.stringify(r.errors));
      assert.ok(r.achieved_rps > 7000, `${r.achieved_rps} requests a second`);
      assert.ok(hz > 600 && hz < 1000, `${hz.toFixed(0)} wake-ups a second at 8,000 requests a second`);
    } finally {
      await target.stop();
    }
  },
);
