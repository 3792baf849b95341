/** The tracer's program run on a process of known calls (needs root and bpftrace, which
 *  scripts/bootstrap.sh installs). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTracer } from '../../src/collect/bpftrace.js';
import { sendBit } from '../../src/model/profile.js';

const work = mkdtempSync(join(tmpdir(), 'twin-tracer-'));
after(() => rmSync(work, { recursive: true, force: true }));

test("a store's log is no reply: the calls after a send on a socket, and a turn's requests, leave a file's calls out", async () => {
  // As Redis with appendfsync always, 200 turns: a wait, a request read from a socket, the
  // log read and written and synced, the reply sent, a getppid after it.
  const src = join(work, 'store.c');
  writeFileSync(
    src,
    `#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    int sv[2], log = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    char c = 'x', go;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || log < 0 || write(log, &c, 1) != 1 ||
        read(0, &go, 1) != 1)
        return 1;
    for (int r = 0; r < 200; r++) {
        struct pollfd p = { sv[0], POLLIN, 0 };
        if (write(sv[1], &c, 1) != 1 || poll(&p, 1, 1000) != 1 || read(sv[0], &c, 1) != 1 ||
            pread(log, &c, 1, 0) != 1 || lseek(log, 0, SEEK_SET) != 0 || read(log, &c, 1) != 1 ||
            write(log, &c, 1) != 1 || fdatasync(log) != 0 || write(sv[0], &c, 1) != 1 ||
            getppid() < 0 || read(sv[1], &c, 1) != 1)
            return 1;
    }
    return 0;
}
`,
  );
  const bin = join(work, 'store');
  assert.equal(spawnSync('cc', ['-O1', '-o', bin, src]).status, 0);
  const child = spawn(bin, [join(work, 'log')], { stdio: ['pipe', 'ignore', 'ignore'] });
  const tracer = await startTracer([child.pid!]);
  child.stdin!.end('g');
  const [code] = await once(child, 'exit');
  const t = await tracer.stop();
  assert.equal(code, 0);
  const WRITE = sendBit('write');
  const afterSend = (call: string) =>
    t
      .after!.filter((a) => a.tid === child.pid && a.call === call && a.sends & WRITE)
      .reduce((n, a) => n + a.count, 0);
  assert.equal(afterSend('fdatasync'), 0);
  assert.equal(afterSend('lseek'), 0);
  // After the reply (the client's read of it is the same thread's: after too).
  assert.equal(afterSend('getppid'), 200);
  // Each turn (from a poll to the next: 199 of them) received the request and, on the pair's
  // other end, its reply: the log's read is none.
  const turns = t.turns!.filter((k) => k.tid === child.pid);
  assert.deepEqual(
    turns.map((k) => [k.requests, k.count]),
    [[2, 199]],
  );
});

test('a tracer that ends early, or ends without its counts, says so and why', async () => {
  // Stand-ins for bpftrace: attached (its ready line), then dead with an error of its own; or
  // told to stop, gone without its maps.
  const fake = (name: string, body: string) => {
    const file = join(work, name);
    writeFileSync(file, `#!/bin/sh\necho '{"type": "printf", "data": "twin-tracing\\n"}'\n${body}\n`, {
      mode: 0o755,
    });
    return file;
  };
  const was = process.env.TWIN_BPFTRACE;
  try {
    process.env.TWIN_BPFTRACE = fake('crash', 'sleep 0.2; echo "ERROR: map full" >&2; exit 1');
    const crash = await startTracer([process.pid]);
    await new Promise((r) => setTimeout(r, 600));
    await assert.rejects(crash.stop(), /bpftrace ended before its window did \(exit 1\): ERROR: map full/);
    process.env.TWIN_BPFTRACE = fake(
      'mute',
      `trap 'echo "ERROR: cannot read maps" >&2; exit 0' INT\nwhile :; do sleep 0.05; done`,
    );
    const mute = await startTracer([process.pid]);
    await assert.rejects(
      mute.stop(),
      /bpftrace ended [0-9.]+ s after its window without printing its counts: ERROR: cannot read maps/,
    );
  } finally {
    if (was === undefined) delete process.env.TWIN_BPFTRACE;
    else process.env.TWIN_BPFTRACE = was;
  }
});
