import { existsSync, mkdirSync } from 'node:fs';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { SEND_CALLS, TwinError } from '../model/index.js';
import { spawnTracked, stopChild } from './children.js';
import { syscallName, syscallNumber } from './syscalls.js';

/** Calls that carry a socket's bytes; their sizes are recorded per fd class. */
export const IO_CALLS = [
  'read',
  'write',
  'readv',
  'writev',
  'recvfrom',
  'sendto',
  'recvmsg',
  'sendmsg',
  'pread64',
  'pwrite64',
];

const READY = 'twin-tracing';

/** Calls a thread blocks in while it waits for another (a lock's holder), not for a device. */
const WAIT_CALLS = [
  'futex',
  'epoll_wait',
  'epoll_pwait',
  'poll',
  'ppoll',
  'select',
  'pselect6',
  'semop',
  'semtimedop',
];

/** Probes of a request's waits by its place in a transaction of `cycle` requests a connection
 *  sends in turn (a pgbench script's statements): a request runs from a receive on a socket
 *  (`recvfrom`, `recvmsg`) to the next send (`sendto`, `sendmsg`); the one that syncs a file
 *  is the cycle's last, the places counted on from it. By place: requests, those that waited,
 *  their time waiting; the calls made inside, by name; and the time from each place's last
 *  wait (its lock taken; its start where it waited for nothing) to the end of the cycle's
 *  last request. */
function placeProbes(cycle: number): string[] {
  const last = cycle - 1;
  const tp = (kind: string, calls: string[]) =>
    calls.map((c) => `tracepoint:syscalls:sys_${kind}_${c}`).join(',');
  return [
    `${tp('exit', ['recvfrom', 'recvmsg'])} /@watch[pid] && args->ret > 0 && !@lk_in[tid]/ { @lk_in[tid] = 1; @lk_w[tid] = 0; @lk_mk[tid] = nsecs; }`,
    `${tp('enter', WAIT_CALLS)} /@lk_in[tid]/ { @lk_ws[tid] = nsecs; }`,
    `${tp('exit', WAIT_CALLS)} /@lk_ws[tid]/ { @lk_w[tid] += nsecs - @lk_ws[tid]; @lk_ws[tid] = 0; @lk_mk[tid] = nsecs; }`,
    `${tp('enter', ['fsync', 'fdatasync'])} /@lk_in[tid]/ { @lk_sy[tid] = 1; }`,
    // Every call a request makes, by its place (once the places are known: after a sync).
    `tracepoint:raw_syscalls:sys_enter /@lk_in[tid] && @lk_on[tid]/ { @lk_sc[@lk_pos[tid], args->id] = count(); }`,
    `${tp('enter', ['sendto', 'sendmsg'])} /@lk_in[tid]/ {`,
    `  $p = @lk_sy[tid] ? ${last} : @lk_pos[tid];`,
    '  if (@lk_sy[tid] || @lk_on[tid]) {',
    '    @lk_n[$p] = count(); @lk_wait[$p] = sum(@lk_w[tid]);',
    '    if (@lk_w[tid] > 0) { @lk_waited[$p] = count(); }',
    '    @lk_mark[tid, $p] = @lk_mk[tid];',
    `    if ($p == ${last}) {`,
    `      $i = 0;`,
    `      unroll(${last}) { if (@lk_mark[tid, $i]) { @lk_hold[$i] = sum(nsecs - @lk_mark[tid, $i]); @lk_holds[$i] = count(); delete(@lk_mark[tid, $i]); } $i++; }`,
    '    }',
    '    @lk_on[tid] = 1;',
    '  }',
    `  @lk_pos[tid] = ($p + 1) % ${cycle}; @lk_sy[tid] = 0; @lk_in[tid] = 0;`,
    '}',
  ];
}

/** The receives that end a reply's aftermath (the sends are SEND_CALLS, a bit each). */
const RECV_CALLS = ['read', 'readv', 'recvfrom', 'recvmsg'];

/** Whether the descriptor of a call (`args->fd`, at its enter probe) is a socket: its inode's
 *  type, read through the calling task's descriptor table (the kernel's BTF gives the types).
 *  Without BTF, every descriptor passes (a file's write then reads as a send). */
function socketTest(): string {
  if (!existsSync('/sys/kernel/btf/vmlinux')) return '1';
  return '(((*(((struct task_struct *)curtask)->files->fdt->fd + args->fd))->f_inode->i_mode & 0xF000) == 0xC000)';
}

/** The body of the exit probe that keeps @snt: a receive on a socket clears it and counts a
 *  request of the thread's turn (@rq), a send on one sets its bit (@sk: the call's descriptor
 *  is a socket, set by its enter probe). A store's write to its log is no send: Redis's sync
 *  of its log comes before its replies' writes, not after. */
function afterTest(): string {
  const recv = RECV_CALLS.map((c) => `args->id == ${syscallNumber(c)}`).join(' || ');
  const sends = SEND_CALLS.map(
    (c, i) => `if (args->id == ${syscallNumber(c)}) { @snt[tid] = @snt[tid] | ${1 << i}; }`,
  );
  return `if (@sk[tid]) { if (${recv}) { delete(@snt[tid]); @rq[tid] = @rq[tid] + 1; } ${sends.join(' ')} }`;
}

/** The calls an event loop waits in between its turns. */
const TURN_CALLS = ['epoll_wait', 'epoll_pwait', 'poll', 'ppoll', 'select', 'pselect6'];
/** Calls whose first argument is a descriptor, told apart by it when made again in a turn (a
 *  store's one write to its log a turn beside its replies' writes to each connection). */
const FD_CALLS = [...IO_CALLS, 'fsync', 'fdatasync', 'sync_file_range'];
/** Turns counted by their requests up to this many (more count as this many). */
export const TURN_MAX = 64;

/** The body of the enter probe that follows a thread's turns: a wait ends the turn, counted by
 *  the requests received in it (@kt), and starts the next (@gen); any other call made again in
 *  the turn it was made in is counted (@rep; FD_CALLS by their descriptor, in fdRepeat): a call
 *  made once a turn for all its requests (a store's log synced once for the turn's writes) is
 *  never made again in it. */
function turnTest(): string {
  const is = (calls: string[]) => calls.map((c) => `$id == ${syscallNumber(c)}`).join(' || ');
  return [
    `if (${is(TURN_CALLS)}) {`,
    `  if (@rq[tid]) { $k = @rq[tid]; if ($k > ${TURN_MAX}) { $k = ${TURN_MAX}; } @kt[tid, $k] = count(); }`,
    '  delete(@rq[tid]); @gen[tid] = @gen[tid] + 1;',
    `} else if (!(${is(FD_CALLS)})) {`,
    '  $g = @gen[tid] + 1;',
    '  if (@tg[tid, $id] == $g) { @rep[tid, $id] = count(); } else { @tg[tid, $id] = $g; }',
    '}',
  ].join(' ');
}

/** turnTest's repeats of a call on a descriptor, in the enter probe that reads it. */
const fdRepeat =
  '$g = @gen[tid] + 1; if (@tgf[tid, probe, args->fd] == $g) { @repf[tid, probe, args->fd] = count(); } else { @tgf[tid, probe, args->fd] = $g; }';

/** mmap's flag for memory of no file (Linux). */
const MAP_ANONYMOUS = 0x20;

/** The longest cycle placeProbes follows (bpftrace unrolls a loop over its places): a longer
 *  one is traced without places. */
const MAX_CYCLE = 32;

/** The bpftrace program: every system call by process, thread and number; the byte count of
 *  each I/O call by thread and file descriptor (which descriptors are sockets is read from
 *  /proc while the load runs); with a `cycle` of 2 or more, the waits of a transaction's
 *  requests by place (placeProbes). The processes traced are the given ones and every process
 *  they fork while traced (a server that forks a process per connection). Tracepoints only. */
export function bpftraceScript(pids: number[], cycle = 0): string {
  const f = '@watch[pid]';
  const enter = FD_CALLS.map((c) => `tracepoint:syscalls:sys_enter_${c}`).join(',');
  const exit = IO_CALLS.map((c) => `tracepoint:syscalls:sys_exit_${c}`).join(',');
  const places = cycle >= 2 && cycle <= MAX_CYCLE;
  return [
    // BEGIN runs once every probe is attached: the signal that tracing has started.
    `BEGIN { ${pids.map((p) => `@watch[${p}] = 1; `).join('')}printf("${READY}\\n"); }`,
    // A new thread's id joins the set too, harmlessly: the filters test process ids.
    `tracepoint:sched:sched_process_fork /@watch[args->parent_pid]/ { @watch[args->child_pid] = 1; }`,
    // (the id read once: bpftrace 0.17 kept a pointer into the context for a second read, which
    // the verifier refused, "dereference of modified ctx ptr")
    `tracepoint:raw_syscalls:sys_enter /${f}/ { $id = args->id; @sc[pid, tid, $id] = count(); ${turnTest()} }`,
    `${enter} /${f}/ { @fd[tid] = (uint64)args->fd; @sk[tid] = ${socketTest()}; ${fdRepeat} }`,
    `${exit} /${f}/ { @io[tid, probe, @fd[tid], args->ret] = count(); }`,
    // Each map by thread, whether it maps a file (not MAP_ANONYMOUS) and its length.
    `tracepoint:syscalls:sys_enter_mmap /${f}/ { @mm[tid, (args->flags & ${MAP_ANONYMOUS}) == 0, args->len] = count(); }`,
    // The calls a thread makes after it sent, until it next receives: by the sends since. (One
    // probe on every exit: bpftrace 0.17 could not load probes on sys_exit_read beside @io's,
    // "unreachable insn".)
    `tracepoint:raw_syscalls:sys_exit /${f} && args->ret > 0/ { ${afterTest()} }`,
    `tracepoint:raw_syscalls:sys_enter /${f} && @snt[tid]/ { @af[tid, args->id, @snt[tid]] = count(); }`,
    ...(places ? placeProbes(cycle) : []),
    // (the per-thread state is not printed)
    `END { clear(@fd); clear(@sk); clear(@watch); clear(@snt); clear(@rq); clear(@gen); clear(@tg); clear(@tgf); ${places ? ['in', 'w', 'mk', 'ws', 'sy', 'mark', 'on', 'pos'].map((m) => `clear(@lk_${m}); `).join('') : ''}}`,
    '',
  ].join('\n');
}

export interface SyscallTrace {
  /** Calls by thread id, then by system call name. */
  byThread: Map<number, { pid: number; calls: Map<string, number> }>;
  /** I/O call results: thread, call name, file descriptor, on a socket? on a regular file?
   *  (set by markFds), bytes (negative: an error). */
  io: {
    tid: number;
    call: string;
    fd: number;
    socket: boolean;
    file: boolean;
    bytes: number;
    count: number;
  }[];
  /** Calls made after a send on a socket and before the thread's next receive on one, by
   *  thread, name, and the sends made since that receive (a bit each, SEND_CALLS; absent: not
   *  traced). */
  after?: { tid: number; call: string; sends: number; count: number }[];
  /** An event loop's turns (from one wait to the next) by thread and the requests received in
   *  them (up to TURN_MAX); absent: not traced. */
  turns?: { tid: number; requests: number; count: number }[];
  /** Calls made again in the turn they were made in, by thread, name and descriptor (0 for
   *  calls not on one); `socket`, `file` as `io`'s (markFds). */
  repeats?: { tid: number; call: string; fd: number; socket: boolean; file: boolean; count: number }[];
  /** mmap calls by thread: on a file or anonymous, the length mapped (absent: not traced). */
  maps?: { tid: number; file: boolean; bytes: number; count: number }[];
  /** With a cycle (placeProbes), by place in it: requests, those that waited, nanoseconds
   *  waited, and the holds from a place's last wait to the cycle's end (count, nanoseconds). */
  places: Place[];
}

export interface Place {
  requests: number;
  waited: number;
  waitNs: number;
  holds: number;
  holdNs: number;
  /** Calls made inside its requests, by name (its receive aside). */
  calls: Map<string, number>;
}

const PLACE_MAPS: Record<string, Exclude<keyof Place, 'calls'>> = {
  '@lk_n': 'requests',
  '@lk_waited': 'waited',
  '@lk_wait': 'waitNs',
  '@lk_holds': 'holds',
  '@lk_hold': 'holdNs',
};

/** Marks the I/O records whose descriptor was a socket of its process, and those on a regular
 *  file: neither a socket nor a pipe, event fd or device when read, or not open then (a file
 *  a server opens for a request and closes). */
export function markFds(
  t: SyscallTrace,
  fds: Map<number, { sockets: Set<number>; others: Set<number> }>,
): void {
  for (const e of [...t.io, ...(t.repeats ?? [])]) {
    const pid = t.byThread.get(e.tid)?.pid;
    const c = pid === undefined ? undefined : fds.get(pid);
    e.socket = c?.sockets.has(e.fd) ?? false;
    e.file = c !== undefined && !e.socket && !c.others.has(e.fd);
  }
}

/** Parses `bpftrace -f json` output of bpftraceScript. */
export function parseBpftraceJson(text: string): SyscallTrace {
  const byThread: SyscallTrace['byThread'] = new Map();
  const io: SyscallTrace['io'] = [];
  const places: Place[] = [];
  const maps: NonNullable<SyscallTrace['maps']> = [];
  const after: NonNullable<SyscallTrace['after']> = [];
  const turns: NonNullable<SyscallTrace['turns']> = [];
  const repeats: NonNullable<SyscallTrace['repeats']> = [];
  let sawMap = false;
  for (const line of text.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    let rec: { type?: string; data?: Record<string, Record<string, number>> };
    try {
      rec = JSON.parse(line);
    } catch {
      throw new TwinError(`bpftrace printed a malformed JSON line: ${line.slice(0, 80)}`);
    }
    if (rec.type !== 'map' || !rec.data) continue;
    for (const [name, entries] of Object.entries(rec.data)) {
      sawMap = true;
      for (const [key, count] of Object.entries(entries)) {
        const parts = key.split(',');
        if (name === '@sc') {
          const [pid, tid, nr] = parts.map(Number);
          let t = byThread.get(tid);
          if (!t) byThread.set(tid, (t = { pid, calls: new Map() }));
          const sc = syscallName(nr);
          t.calls.set(sc, (t.calls.get(sc) ?? 0) + count);
        } else if (PLACE_MAPS[name] || name === '@lk_sc') {
          const at = Number(parts[0]);
          while (places.length <= at)
            places.push({ requests: 0, waited: 0, waitNs: 0, holds: 0, holdNs: 0, calls: new Map() });
          if (name === '@lk_sc') {
            const sc = syscallName(Number(parts[1]));
            places[at].calls.set(sc, (places[at].calls.get(sc) ?? 0) + count);
          } else places[at][PLACE_MAPS[name]] += count;
        } else if (name === '@af') {
          const [tid, nr, sends] = parts.map(Number);
          after.push({ tid, call: syscallName(nr), sends, count });
        } else if (name === '@kt') {
          const [tid, requests] = parts.map(Number);
          turns.push({ tid, requests, count });
        } else if (name === '@rep' || name === '@repf') {
          const [tid, fd] = [Number(parts[0]), name === '@rep' ? 0 : Number(parts[2])];
          const call =
            name === '@rep'
              ? syscallName(Number(parts[1]))
              : parts[1].replace(/^tracepoint:syscalls:sys_enter_/, '');
          repeats.push({ tid, call, fd, socket: false, file: false, count });
        } else if (name === '@mm') {
          const [tid, file, bytes] = parts.map(Number);
          maps.push({ tid, file: file === 1, bytes, count });
        } else if (name === '@io') {
          const call = parts[1].replace(/^tracepoint:syscalls:sys_exit_/, '');
          io.push({
            tid: Number(parts[0]),
            call,
            fd: Number(parts[2]),
            socket: false,
            file: false,
            bytes: Number(parts[3]),
            count,
          });
        }
      }
    }
  }
  if (!sawMap && !/"type":\s*"attached_probes"/.test(text))
    throw new TwinError('bpftrace printed no results: is tracefs mounted? run scripts/bootstrap.sh');
  return { byThread, io, places, maps, after, turns, repeats };
}

export function ensureTracefs(): void {
  if (existsSync('/sys/kernel/tracing/events')) return;
  mkdirSync('/sys/kernel/tracing', { recursive: true });
  const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
  if (r.status !== 0 || !existsSync('/sys/kernel/tracing/events'))
    throw new TwinError(
      'tracefs is not mounted and cannot be: run as root `mount -t tracefs nodev /sys/kernel/tracing`',
    );
}

export function requireTool(name: string, pkg: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${name}`]);
  if (r.status !== 0)
    throw new TwinError(`${name} is missing: install it with scripts/bootstrap.sh (Debian package ${pkg})`);
}

/** bpftrace's first error line on stderr (its memlock warning aside), or that it gave none. */
function errorLine(err: string): string {
  const line = err.split('\n').find((l) => l.includes('ERROR') && !l.includes('RLIMIT_MEMLOCK'));
  return line?.trim() ?? (err.trim().split('\n').pop() || 'it printed no error');
}

/** A running bpftrace session; stop() ends it and returns what it recorded. */
export interface Tracer {
  /** Wall clock (ms) when the probes were attached. */
  attachedAt: number;
  /** Ends tracing; `windowS` is the time from attach to the end signal. */
  stop(): Promise<SyscallTrace & { windowS: number }>;
}

/** How long bpftrace has to print its maps once told to stop (its places' maps can hold
 *  hundreds of thousands of keys). */
const STOP_MS = 60_000;

export async function startTracer(pids: number[], cycle = 0): Promise<Tracer> {
  requireTool(process.env.TWIN_BPFTRACE ?? 'bpftrace', 'bpftrace');
  ensureTracefs();
  const child: ChildProcess = spawnTracked(
    process.env.TWIN_BPFTRACE ?? 'bpftrace',
    ['-f', 'json', '-e', bpftraceScript(pids, cycle)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BPFTRACE_MAP_KEYS_MAX: '1048576' },
    },
  );
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 30000;
  while (!out.includes(READY)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stopChild(child, 'SIGKILL');
      throw new TwinError(
        `bpftrace could not attach: ${errorLine(err)}; run as root with tracefs mounted (scripts/bootstrap.sh)`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const attachedAt = Date.now();
  return {
    attachedAt,
    async stop() {
      // Ended before its window did (a crash, a kill), it prints nothing more: say why.
      if (child.exitCode !== null || child.signalCode !== null) {
        await stopChild(child, 'SIGKILL', 1000);
        throw new TwinError(
          `bpftrace ended before its window did (${child.signalCode ?? `exit ${child.exitCode}`}): ${errorLine(err)}; run again, and check the machine's memory and \`dmesg\``,
        );
      }
      let exited = false;
      const done = new Promise<void>((r) =>
        child.once('exit', () => {
          exited = true;
          r();
        }),
      );
      const windowS = (Date.now() - attachedAt) / 1000;
      const told = Date.now();
      child.kill('SIGINT');
      await Promise.race([done, new Promise((r) => setTimeout(r, STOP_MS))]);
      await stopChild(child, 'SIGKILL', 1000);
      // Killed before it printed its maps, it leaves a trace of nothing, which would pass for a
      // window without calls.
      if (!exited)
        throw new TwinError(
          `bpftrace printed ${out.length} bytes and had not ended ${STOP_MS / 1000} s after the end of its window: the machine is too busy to trace; run again when it is quieter`,
        );
      if (!/"type":\s*"map"/.test(out))
        throw new TwinError(
          `bpftrace ended ${((Date.now() - told) / 1000).toFixed(1)} s after its window without printing its counts: ${errorLine(err)}`,
        );
      return { ...parseBpftraceJson(out), windowS };
    },
  };
}
