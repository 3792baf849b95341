import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readYamlFile, Workload } from '../../src/model/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test("every example's workload and its other workloads (shift*.yaml) parse", () => {
  const dirs = readdirSync(join(ROOT, 'examples'));
  let shifts = 0;
  for (const d of dirs) {
    const files = readdirSync(join(ROOT, 'examples', d)).filter((f) =>
      /^(workload|shift(-[a-z0-9]+)*)\.yaml$/.test(f),
    );
    assert.ok(files.includes('workload.yaml'), `${d}: no workload.yaml`);
    const base = readYamlFile(Workload, join(ROOT, 'examples', d, 'workload.yaml'), 'workload');
    for (const f of files.filter((x) => x !== 'workload.yaml')) {
      const w = readYamlFile(Workload, join(ROOT, 'examples', d, f), 'workload');
      shifts++;
      // A shift runs the same protocol and driver as the profiled workload.
      assert.equal(w.protocol, base.protocol, `${d}/${f}`);
      assert.equal(w.driver.name, base.driver.name, `${d}/${f}`);
    }
  }
  assert.ok(shifts >= 7, `${shifts} shifted workloads`);
  const workers = readYamlFile(Workload, join(ROOT, 'examples/memcached/shift-workers-2.yaml'), 'workload');
  assert.equal(workers.cloneWorkers, 2);
  assert.match(String(workers.command), / -t 2 /);
});
