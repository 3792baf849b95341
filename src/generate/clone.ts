import {
  bodyAfter,
  IDLE_BACKGROUND,
  OWN_CONNECTION,
  type Profile,
  type SizeBins,
  type SyscallRate,
} from '../model/index.js';
import type { BodyPlan } from '../synth/body.js';
import type { ChainSegment } from '../synth/layout.js';
import { emitBody } from './body.js';

const SC: Record<string, string> = {
  openat: 'OPENAT',
  open: 'OPENAT',
  close: 'CLOSE',
  fstat: 'FSTAT',
  newfstatat: 'NEWFSTATAT',
  stat: 'NEWFSTATAT',
  lstat: 'NEWFSTATAT',
  statx: 'STATX',
  pread64: 'PREAD',
  read: 'READ_FILE',
  readv: 'READ_FILE',
  write: 'WRITE_LOG',
  writev: 'WRITE_LOG',
  pwrite64: 'PWRITE',
  fsync: 'FSYNC',
  fdatasync: 'FDATASYNC',
  sync_file_range: 'SYNC_FILE_RANGE',
  lseek: 'LSEEK',
  futex: 'FUTEX',
  epoll_ctl: 'EPOLL_CTL',
  setsockopt: 'SETSOCKOPT',
  getsockopt: 'GETSOCKOPT',
  ioctl: 'IOCTL',
  fcntl: 'FCNTL',
  clock_gettime: 'CLOCK_GETTIME',
  getpid: 'GETPID',
  mmap: 'MMAP',
  munmap: 'MUNMAP',
  madvise: 'MADVISE',
};

/** The runtime's replay step for a system call name (others keep their count as getppid). */
export function replayCall(name: string): string {
  return `TWIN_SC_${SC[name] ?? 'GENERIC'}`;
}

const PROTO = {
  memcached: 'TWIN_PROTO_MEMCACHED',
  resp: 'TWIN_PROTO_RESP',
  http: 'TWIN_PROTO_HTTP',
  postgres: 'TWIN_PROTO_POSTGRES',
} as const;
const NET = {
  'worker-pool': 'TWIN_NET_WORKER_POOL',
  'event-loop': 'TWIN_NET_EVENT_LOOP',
  prefork: 'TWIN_NET_PREFORK',
  'thread-per-connection': 'TWIN_NET_THREAD_PER_CONN',
  'process-pool': 'TWIN_NET_PROCESS_POOL',
  'process-per-connection': 'TWIN_NET_PROCESS_PER_CONN',
  'process-threads': 'TWIN_NET_PROCESS_THREADS',
} as const;
const RECV = { read: 'TWIN_RECV_READ', recvfrom: 'TWIN_RECV_RECV', recvmsg: 'TWIN_RECV_RECVMSG' } as const;
const SEND = {
  write: 'TWIN_SEND_WRITE',
  sendto: 'TWIN_SEND_SENDTO',
  sendmsg: 'TWIN_SEND_SENDMSG',
  writev: 'TWIN_SEND_WRITEV',
} as const;
const SLEEP = {
  idle: 'TWIN_SLEEP_IDLE',
  nanosleep: 'TWIN_SLEEP_NANOSLEEP',
  clock_nanosleep: 'TWIN_SLEEP_CLOCK_NANOSLEEP',
  futex: 'TWIN_SLEEP_FUTEX',
  epoll_wait: 'TWIN_SLEEP_EPOLL_WAIT',
  poll: 'TWIN_SLEEP_POLL',
  select: 'TWIN_SLEEP_SELECT',
} as const;

/** At most `max` bins: consecutive sizes grouped into groups of about equal weight, each
 *  standing for its weighted mean size, so the distribution's mean is kept. */
export function capBins(bins: SizeBins, max = 256): [number, number][] {
  if (bins.length <= max) return bins.map(([s, w]) => [s, Math.max(1, Math.round(w))]);
  const total = bins.reduce((a, [, w]) => a + w, 0);
  const out: [number, number][] = [];
  let w = 0;
  let sw = 0;
  for (const [s, c] of bins) {
    w += c;
    sw += s * c;
    if (w >= total / max) {
      out.push([Math.round(sw / w), Math.max(1, Math.round(w))]);
      w = 0;
      sw = 0;
    }
  }
  if (w > 0) out.push([Math.round(sw / w), Math.max(1, Math.round(w))]);
  return out;
}

/** A capped size table as a C array; returns its declaration and its length. */
function binsArray(name: string, bins: SizeBins): { decl: string; length: number } {
  const b = capBins(bins);
  return {
    decl: `static const twin_bin ${name}[${b.length}] = { ${b.map(([s, w]) => `{ ${s}u, ${w}u }`).join(', ')} };`,
    length: b.length,
  };
}

/** The most processes a pool that grows may fork. */
const POOL_MAX = 1024;

/** Background threads of the clone's main process: as many as the original had beside its
 *  main thread (and, in a worker pool, its workers; with a thread per connection, those);
 *  then those of processes of their own. */
export function backgroundThreads(p: Profile): Profile['skeleton']['background'] {
  const sk = p.skeleton;
  const main = sk.threads.filter((t) => t.process === 0);
  const own =
    sk.networkModel === 'worker-pool'
      ? sk.workers
      : sk.networkModel === 'thread-per-connection'
        ? main.filter((t) => t.role === 'worker').length
        : 0;
  const want = Math.max(0, main.length - 1 - own);
  const bg = sk.background.filter((b) => !b.ownProcess).slice(0, want);
  while (bg.length < want) bg.push({ ...IDLE_BACKGROUND });
  return [...bg, ...sk.background.filter((b) => b.ownProcess)];
}

/** Rings or code segments as `loads per request x size in lines`. */
const ringText = (rs: { lines: number; loadsPerReq: number }[]) =>
  rs
    .filter((r) => r.lines > 0)
    .map((r) => `${r.loadsPerReq.toFixed(2)}x${r.lines}`)
    .join(' ') || 'none';

/** A step's cold cache (its pages and a request's touches), where it has one. */
/** A call's replay steps: one, or for `mmap` with maps of a file, those and the anonymous
 *  ones apart, each at its share of the rate; each of them split again where some of the
 *  call comes after the reply is sent (`afterShare`), the cold pages with the part before. A
 *  call made once a turn (`turnMarks`) is one step at the share of requests that mark it. */
function stepsOf(c: SyscallRate): { call: string; perReq: number; text: string }[] {
  const share = c.name === 'mmap' ? (c.fileShare ?? 0) : 0;
  const kinds =
    share > 0
      ? [
          { call: 'TWIN_SC_MMAP_FILE', perReq: c.perReq * share },
          { call: replayCall(c.name), perReq: c.perReq * (1 - share) },
        ].filter((x) => x.perReq > 0)
      : [{ call: replayCall(c.name), perReq: c.perReq }];
  if (c.turnMarks !== undefined)
    return kinds.map((k) => ({
      ...k,
      perReq: c.perReq ? (k.perReq / c.perReq) * c.turnMarks! : 0,
      text: ', 0u, 0.0, TWIN_STEP_TURN',
    }));
  const after = c.afterShare ?? 0;
  return kinds.flatMap((k) =>
    [
      { ...k, perReq: k.perReq * (1 - after), text: `${coldText(c)}, TWIN_STEP_REQUEST` },
      { ...k, perReq: k.perReq * after, text: ', 0u, 0.0, TWIN_STEP_AFTER' },
    ].filter((x, i) => (i === 0 ? after < 1 : after > 0)),
  );
}

/** A call's sizes, or for one made once a turn, a mark's: the clone writes the sum of its turn's
 *  marks' sizes, and the call's profiled sizes already hold the turns of several (Redis's
 *  write of its log for every set of the turn), so each is the call's scaled by its calls a
 *  mark, which keeps the bytes a request. */
function markSizes(c: SyscallRate): SizeBins {
  const k = c.turnMarks ? c.perReq / c.turnMarks : 1;
  return k === 1 ? c.sizes! : c.sizes!.map(([s, w]): [number, number] => [Math.max(1, Math.round(s * k)), w]);
}

const coldText = (c: SyscallRate) =>
  c.cold ? `, ${c.cold.pages}u, ${c.cold.touches.toFixed(6)}` : ', 0u, 0.0';

/** clone.c: the profile as a constant twin_config and the generated body. */
export function emitClone(p: Profile, plan: BodyPlan, chain: ChainSegment[], profileDigest: string): string {
  const sk = p.skeleton;
  const out: string[] = [];
  out.push(
    '/* clone.c -- a synthetic clone generated by `twin generate`.',
    ` * Profile: service ${p.service.name}, schema v${p.schemaVersion}, digest ${profileDigest}.`,
    ` * Body per request: ${Math.round(plan.insnsPerReq)} instructions (insnScale ${p.knobs.insnScale}), ${plan.hardBranchesPerReq.toFixed(2)} random branches,`,
    ` * ring loads ${ringText(plan.rings)}, code blocks ${ringText(plan.segments)}.`,
    ` * Skeleton: ${sk.networkModel}, ${sk.workers} worker(s), ${sk.recvCall}/${sk.sendCall}${sk.recvUntilEagain ? ', receives until EAGAIN' : ''}.`,
    ' * It holds counts, rates and size distributions only. */',
    '#include <stddef.h>',
    '#include <stdint.h>',
    '#include "twin.h"',
    '',
  );
  out.push(emitBody(plan, chain), '');
  // One replay plan for every request type: the profile's kernel work is per request overall.
  const replaySizes = p.kernel.replay.map((r, i) =>
    r.sizes?.length ? binsArray(`replay_sizes_${i}`, markSizes(r)) : null,
  );
  for (const t of replaySizes) if (t) out.push(t.decl);
  // (unused where every type has calls of its own)
  const steps = p.kernel.replay.flatMap(stepsOf).length;
  out.push(`static const twin_syscall_step replay_steps[${Math.max(1, steps)}] __attribute__((unused)) = {`);
  if (!steps) out.push('    { TWIN_SC_GENERIC, 0.0, NULL, 0, 0u, 0.0, 0u },');
  p.kernel.replay.forEach((r, i) => {
    const t = replaySizes[i];
    const sizes = t ? `replay_sizes_${i}, ${t.length}` : 'NULL, 0';
    for (const x of stepsOf(r))
      out.push(`    { ${x.call}, ${x.perReq.toFixed(4)}, ${sizes}${x.text} }, /* ${r.name} */`);
  });
  out.push('};', '');
  const respSizes = p.requests.map((r, i) => binsArray(`resp_sizes_${i}`, r.responseSizes));
  for (const t of respSizes) out.push(t.decl);
  p.requests.forEach((r, i) => {
    if (!r.keySizes) return;
    out.push(`static const uint32_t key_sizes_${i}[${r.keySizes.length}] = {`);
    for (let k = 0; k < r.keySizes.length; k += 16)
      out.push(`    ${r.keySizes.slice(k, k + 16).join(', ')},`);
    out.push('};');
  });
  // A type with calls of its own (a commit's fsync) replays those, the others the plan above;
  // the sizes are the call's over every type.
  p.requests.forEach((r, i) => {
    if (!r.replay) return;
    // A mark of this type's that stands for other calls than the mix's marks do (a commit's
    // log write, one a mark where the mix's marks read as 0.76 of one) has sizes of its own.
    const own = r.replay.map((c, j) => {
      const all = p.kernel.replay.find((x) => x.name === c.name);
      if (!c.sizes?.length || c.turnMarks === undefined || !all?.turnMarks || !c.turnMarks) return null;
      const mine = c.perReq / c.turnMarks;
      return Math.abs(mine / (all.perReq / all.turnMarks) - 1) > 0.01
        ? binsArray(`replay_sizes_${i}_${j}`, markSizes(c))
        : null;
    });
    for (const t of own) if (t) out.push(t.decl);
    const n = r.replay.flatMap(stepsOf).length;
    out.push(`static const twin_syscall_step replay_steps_${i}[${Math.max(1, n)}] = {`);
    if (!n) out.push('    { TWIN_SC_GENERIC, 0.0, NULL, 0, 0u, 0.0, 0u },');
    r.replay.forEach((c, j) => {
      const k = p.kernel.replay.findIndex((x) => x.name === c.name);
      const sizes = own[j]
        ? `replay_sizes_${i}_${j}, ${own[j]!.length}`
        : k >= 0 && replaySizes[k]
          ? `replay_sizes_${k}, ${replaySizes[k]!.length}`
          : 'NULL, 0';
      for (const x of stepsOf(c))
        out.push(`    { ${x.call}, ${x.perReq.toFixed(4)}, ${sizes}${x.text} }, /* ${c.name} */`);
    });
    out.push('};');
  });
  out.push(`static const twin_op ops[${p.requests.length}] = {`);
  p.requests.forEach((r, i) => {
    const keys = r.keySizes ? `key_sizes_${i}, ${r.keySizes.length}` : 'NULL, 0';
    const steps = r.replay
      ? `replay_steps_${i}, ${r.replay.flatMap(stepsOf).length}`
      : `replay_steps, ${p.kernel.replay.flatMap(stepsOf).length}`;
    out.push(`    { "${r.op}", resp_sizes_${i}, ${respSizes[i].length}, ${steps}, ${keys} },`);
  });
  out.push('};', '');
  const bg = backgroundThreads(p);
  bg.forEach((b, i) => {
    if (!b.byLoad.length) return;
    out.push(`static const twin_bg_load bg_load_${i}[] = {`);
    for (const q of b.byLoad)
      out.push(`    { ${q.rps.toFixed(1)}, ${q.hz.toFixed(2)}, ${q.cpuNsPerSec.toFixed(0)}.0 },`);
    out.push('};');
  });
  // Each background thread's disk calls (a WAL writer's), a request served by the whole clone.
  bg.forEach((b, i) => {
    if (!b.disk.length) return;
    const sizes = b.disk.map((d, j) =>
      d.sizes?.length ? binsArray(`bg_disk_sizes_${i}_${j}`, d.sizes) : null,
    );
    for (const t of sizes) if (t) out.push(t.decl);
    out.push(`static const twin_syscall_step bg_disk_${i}[${b.disk.length}] = {`);
    b.disk.forEach((d, j) => {
      const t = sizes[j];
      const bins = t ? `bg_disk_sizes_${i}_${j}, ${t.length}` : 'NULL, 0';
      out.push(
        `    { ${replayCall(d.name)}, ${d.perReq.toFixed(6)}, ${bins}, 0u, 0.0, 0u }, /* ${d.name} */`,
      );
    });
    out.push('};');
  });
  out.push(`static const twin_bg_thread background[${Math.max(1, bg.length)}] = {`);
  if (!bg.length) out.push('    { TWIN_SLEEP_IDLE, 0, 0, 0.0, 0.0, 0.0, 0, NULL, 0, NULL, 0 },');
  bg.forEach((b, i) =>
    out.push(
      `    { ${SLEEP[b.sleep]}, ${b.periodUs}u, ${b.callsPerWake}u, ${b.wakesPerReq.toFixed(5)}, ${b.cpuNsPerSec.toFixed(0)}.0, ${b.cpuNsPerReq.toFixed(0)}.0, ${b.byLoad.length}u, ${b.byLoad.length ? `bg_load_${i}` : 'NULL'}, ${b.ownProcess ? 1 : 0}, ${b.disk.length ? `bg_disk_${i}, ${b.disk.length}u` : 'NULL, 0'} },`,
    ),
  );
  out.push('};', '');
  // Serialized sections, by the request types' indices.
  const typeOf = (op: string) => p.requests.findIndex((r) => r.op.toLowerCase() === op.toLowerCase());
  const locks = sk.locks.filter((l) => typeOf(l.op) >= 0 && typeOf(l.release) >= 0);
  out.push(`static const twin_lock locks[${Math.max(1, locks.length)}] = {`);
  if (!locks.length) out.push('    { 0, 1, 0, 1, 0 },');
  for (const l of locks)
    out.push(
      `    { ${typeOf(l.op)}u, ${l.nth}u, ${typeOf(l.release)}u, ${l.ways}u, ${l.wait === 'latch' ? 1 : 0} }, /* ${l.op} #${l.nth} to ${l.release}, ${l.wait} */`,
    );
  out.push('};', '');
  const fileBytes = Math.max(1 << 20, ...p.kernel.replay.flatMap((r) => (r.sizes ?? []).map(([s]) => s * 4)));
  out.push(
    'static const twin_config config = {',
    `    .protocol = ${PROTO[p.service.protocol]},`,
    `    .net_model = ${NET[sk.networkModel]},`,
    `    .workers = ${sk.workers}u,`,
    `    .pool_spare = ${sk.spare}u,`,
    `    .threads = ${sk.threadsPerProcess}u,`,
    // The original's cap on its pool is not seen unless the profiled load reached it.
    `    .pool_max = ${sk.spare ? POOL_MAX : sk.workers}u,`,
    `    .wait_poll = ${sk.io === 'poll' || sk.io === 'select' ? 1 : 0},`,
    // A connection's own thread or process that waits in epoll receives first (PostgreSQL's
    // backends); the event loops and worker pools wait in epoll by design.
    `    .wait_epoll = ${sk.io === 'epoll' && OWN_CONNECTION.has(sk.networkModel) ? 1 : 0},`,
    `    .recv_call = ${RECV[sk.recvCall]},`,
    `    .recv_until_eagain = ${sk.recvUntilEagain ? 1 : 0},`,
    `    .send_call = ${SEND[sk.sendCall]},`,
    `    .ops = ops,`,
    `    .n_ops = ${p.requests.length}u,`,
    `    .bg = background,`,
    `    .n_bg = ${bg.length}u,`,
    `    .data_file_bytes = ${fileBytes}u,`,
    `    .body_mem_bytes = ${plan.memBytes}u,`,
    `    .body_conn_lines = ${plan.conn.lines}u,`,
    `    .body = clone_body,`,
    `    .body_after = ${bodyAfter(p)}u,`,
    `    .body_init = clone_body_init,`,
    `    .locks = locks,`,
    `    .n_locks = ${locks.length}u,`,
    '};',
    '',
    'int main(int argc, char **argv)',
    '{',
    '    return twin_main(&config, argc, argv);',
    '}',
    '',
  );
  return out.join('\n');
}

export const CLONE_MAKEFILE = `# Builds the clone from clone.c and the Twin runtime beside it.
CC ?= gcc
CFLAGS ?= -std=gnu11 -O2 -Wall -Wextra -Werror
RUNTIME := $(wildcard runtime/*.c)

# The runtime links first: its code then sits at the same addresses (and cache sets) whatever
# the size of the generated body after it. The body's functions lie in the order written,
# clone.c's parts in slots of fixed size, so that what follows them lies where it did
# whatever the knobs (see clone.c).
clone: clone.c chain.c $(RUNTIME) $(wildcard runtime/*.h)
\t$(CC) $(CFLAGS) -fno-toplevel-reorder -pthread -Iruntime -c clone.c chain.c
\t$(CC) $(CFLAGS) -pthread -Iruntime -o $@ $(RUNTIME) clone.o chain.o -lm
\trm -f clone.o chain.o

clean:
\trm -f clone clone.o chain.o

.PHONY: clean
`;
