import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** Fields of /proc/PID/stat after the command name (which may contain spaces and parens). */
export function parseStat(text: string): { ppid: number; utime: number; stime: number; threads: number } {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field N is rest[N-3].
  return {
    ppid: Number(rest[1]),
    utime: Number(rest[11]),
    stime: Number(rest[12]),
    threads: Number(rest[17]),
  };
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Children of `pid` from /proc/PID/task/TID/children. */
export function parseChildren(text: string): number[] {
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/** The process and all its descendants. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    if (readOr(`/proc/${p}/stat`) === null) continue;
    out.push(p);
    for (const tid of tasks(p)) {
      const c = readOr(`/proc/${p}/task/${tid}/children`);
      if (c) todo.push(...parseChildren(c));
    }
  }
  return out;
}

export function tasks(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

/** First field of /proc/PID/task/TID/schedstat: nanoseconds on a CPU (user + system). */
export function parseSchedstat(text: string): number {
  return Number(text.trim().split(/\s+/)[0]);
}

/** CPU time (user + system) of a set of processes in nanoseconds, summed over their threads
 *  (schedstat, exact to the nanosecond, unlike the tick counts of /proc/PID/stat), and the
 *  thread count. */
export function cpuNs(pids: number[]): { ns: number; threads: number; byThread: Map<number, number> } {
  let ns = 0;
  const byThread = new Map<number, number>();
  for (const p of pids) {
    for (const t of tasks(p)) {
      const s = readOr(`/proc/${p}/task/${t}/schedstat`);
      if (!s) continue;
      const x = parseSchedstat(s);
      ns += x;
      byThread.set(t, x);
    }
  }
  return { ns, threads: byThread.size, byThread };
}

/** Clock ticks of user and of system time of each thread of a set of processes (fields 14 and
 *  15 of /proc/PID/task/TID/stat): sampled at each tick, so good for the share of system time
 *  over a window of seconds, not for the time itself (cpuNs). */
export function cpuTicks(pids: number[]): Map<number, { user: number; sys: number }> {
  const byThread = new Map<number, { user: number; sys: number }>();
  for (const p of pids)
    for (const t of tasks(p)) {
      const s = readOr(`/proc/${p}/task/${t}/stat`);
      if (!s) continue;
      const x = parseStat(s);
      byThread.set(t, { user: x.utime, sys: x.stime });
    }
  return byThread;
}

/** Resident bytes of a set of processes, summed (the second field of /proc/PID/statm, in
 *  pages; the page size is 4 KiB on every x86-64 Linux). */
export function rssBytes(pids: number[]): number {
  let pages = 0;
  for (const p of pids) pages += Number(readOr(`/proc/${p}/statm`)?.split(' ')[1] ?? 0);
  return pages * 4096;
}

/** The real user id a process runs as (null: gone). */
export function uidOf(pid: number): number | null {
  const m = /^Uid:\s+(\d+)/m.exec(readOr(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) : null;
}

/** File descriptors of `pid` now (links of /proc/PID/fd): its sockets, and those that are
 *  neither sockets nor regular files (pipes, event and timer fds, devices). */
export function fdClasses(pid: number): { sockets: Set<number>; others: Set<number> } {
  const out = { sockets: new Set<number>(), others: new Set<number>() };
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith('socket:')) out.sockets.add(Number(fd));
      else if (!link.startsWith('/') || link.startsWith('/dev/')) out.others.add(Number(fd));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}
