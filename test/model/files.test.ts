import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileEntry, Workload, expandFiles } from '../../src/model/index.js';

test('a numbered file set expands to its count, sizes log-normal within bounds and the same every time', () => {
  const entry = FileEntry.parse({
    path: 'www/site/{i}.html',
    count: 2000,
    size: { logNormal: { median: 4096, sigma: 1.4 }, min: 256, max: 262144 },
  });
  const files = expandFiles([entry, FileEntry.parse({ path: 'www/index.html', size: 512 })]);
  assert.equal(files.length, 2001);
  assert.equal(files[137].path, 'www/site/137.html');
  assert.deepEqual(files[2000], { path: 'www/index.html', size: 512 });
  const sizes = files.slice(0, 2000).map((f) => f.size);
  assert.ok(sizes.every((s) => s >= 256 && s <= 262144));
  const sorted = [...sizes].sort((a, b) => a - b);
  const median = sorted[1000];
  assert.ok(median > 3500 && median < 4700, `median ${median}`);
  // A sigma of 1.4: a tenth of the files below median / e^(1.28 * 1.4), about 680 bytes.
  const p10 = sorted[200];
  assert.ok(p10 > 500 && p10 < 900, `10th percentile ${p10}`);
  assert.deepEqual(expandFiles([entry]), files.slice(0, 2000));
});

test('a file set needs {i} and a count together', () => {
  assert.throws(() => FileEntry.parse({ path: 'www/{i}.html', size: 10 }));
  assert.throws(() => FileEntry.parse({ path: 'www/a.html', size: 10, count: 3 }));
  assert.throws(() => FileEntry.parse({ path: '../a.html', size: 10 }));
  const w = Workload.parse({
    protocol: 'http',
    requests: [{ op: 'get', share: 1 }],
    loads: [100],
    files: [{ path: 'www/{i}', count: 3, size: 7 }],
  });
  assert.equal(expandFiles(w.files).length, 3);
});
