/** Traits of the replayed calls beyond their rates, from the serving threads of every traced
 *  window: how a map is made, which calls come after the reply, which once a turn. */
import type { SyscallTrace } from '../collect/bpftrace.js';
import type { Observation } from '../collect/observe.js';
import { sendBit, type RequestType, type SizeBins } from '../model/index.js';
import { mergeBins, servingThreads, threadActivity } from './skeleton.js';

/** Calls on a socket or a file: the skeleton makes the socket part. */
export const SOCKET_IO = new Set([
  'read',
  'readv',
  'recvfrom',
  'recvmsg',
  'write',
  'writev',
  'sendto',
  'sendmsg',
  'pread64',
  'pwrite64',
]);

/** The threads that serve the requests in a traced window. */
export const servingTids = (x: Observation) => new Set(servingThreads(threadActivity(x)).map((t) => t.tid));

/** A window's calls of its serving threads (`tids`) by name, their I/O calls on sockets left
 *  out (the skeleton makes those; their file and pipe part is replayed). */
export function replayCounts(trace: SyscallTrace, tids: Set<number>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const tid of tids)
    for (const [name, n] of trace.byThread.get(tid)?.calls ?? [])
      counts.set(name, (counts.get(name) ?? 0) + n);
  for (const name of SOCKET_IO) {
    const onSockets = trace.io
      .filter((e) => tids.has(e.tid) && e.call === name && e.socket)
      .reduce((a, e) => a + e.count, 0);
    if (counts.has(name)) counts.set(name, Math.max(0, counts.get(name)! - onSockets));
  }
  return counts;
}

/** Each request type's part in the replayed calls, from a traced run of each type alone (`alone`,
 *  by op): the calls a request of the type made there, by name, times its share of the mix's
 *  requests, for splitByType. Redis's sets each append to its log and sync it, its gets never:
 *  a clone that synced requests of either type at the mix's rate synced as its draws fell,
 *  not as the sets did, and a mix of other shares not at all as the original. */
export function aloneMade(
  alone: { op: string; x: Observation }[],
  requests: RequestType[],
): Map<string, Map<string, number>> {
  const made = new Map<string, Map<string, number>>();
  for (const r of requests) {
    const run = alone.find((a) => a.op.toLowerCase() === r.op.toLowerCase());
    if (!run?.x.trace || run.x.load.sent === 0) continue;
    const counts = replayCounts(run.x.trace, servingTids(run.x));
    made.set(r.op, new Map([...counts].map(([name, n]) => [name, (n / run.x.load.sent) * r.share])));
  }
  return made;
}

/** The serving threads' maps over the windows: their lengths, and the share on a file. */
export function mapsOf(windows: { x: Observation; tids: Set<number> }[]): {
  sizes: SizeBins;
  fileShare: number;
} {
  const all = windows.flatMap((w) => (w.x.trace!.maps ?? []).filter((m) => w.tids.has(m.tid)));
  const n = all.reduce((a, m) => a + m.count, 0);
  const sizes = mergeBins([all.filter((m) => m.bytes > 0).map((m): [number, number] => [m.bytes, m.count])]);
  const onFile = all.filter((m) => m.file).reduce((a, m) => a + m.count, 0);
  return { sizes, fileShare: n ? Math.round((onFile / n) * 1e4) / 1e4 : 0 };
}

/** The serving threads' calls of `name` made after a reply went out by `send` (before their
 *  next receive), over the windows. */
export function afterCount(
  windows: { x: Observation; tids: Set<number> }[],
  name: string,
  send: string,
): number {
  const bit = sendBit(send);
  if (bit < 1) return 0;
  return windows
    .flatMap((w) => (w.x.trace!.after ?? []).filter((a) => w.tids.has(a.tid)))
    .filter((a) => a.call === name && a.sends & bit)
    .reduce((n, a) => n + a.count, 0);
}

/** Repeats the per-request reading must expect before a call's want of them reads as a call
 *  made once a turn: with 20 expected (about Poisson), 5 or fewer come by chance with odds
 *  under 1 in 10,000; a call made once a turn makes none. */
const MIN_EXPECTED_REPEATS = 20;

/** A call made once an event loop's turn for the turn's requests that need it (Redis's
 *  append-only file, written and synced once a turn before the turn's replies go out), told
 *  from one made for each request by the turns that served two or more requests: made for
 *  each, a call `s` of a thread's requests make comes again in such a turn as often as
 *  `k s - 1 + (1 - s)^k` a turn of k requests; made once a turn, never. Where it reads as made
 *  once a turn: the share of requests that need it (m, solving calls = sum over turns of
 *  1 - (1 - m)^k), which the clone's requests mark it at; else null (made for each request,
 *  or too few turns of several requests to tell). Over the serving threads of every window;
 *  the part of a socket I/O call made on sockets is the skeleton's and left out. */
export function turnMarks(windows: { x: Observation; tids: Set<number> }[], name: string): number | null {
  let calls = 0;
  let repeats = 0;
  let expected = 0;
  const turns: Map<number, number>[] = [];
  for (const { x, tids } of windows) {
    const t = x.trace!;
    for (const tid of tids) {
      const hist = new Map<number, number>();
      for (const e of t.turns ?? [])
        if (e.tid === tid) hist.set(e.requests, (hist.get(e.requests) ?? 0) + e.count);
      const requests = [...hist].reduce((a, [k, n]) => a + k * n, 0);
      const onSockets = t.io
        .filter((e) => e.tid === tid && e.call === name && e.socket)
        .reduce((a, e) => a + e.count, 0);
      const n = Math.max(0, (t.byThread.get(tid)?.calls.get(name) ?? 0) - onSockets);
      if (!requests || !n) continue;
      const s = n / requests;
      if (s > 1) return null; // more than one a request: a turn's repeats say nothing
      calls += n;
      repeats += (t.repeats ?? [])
        .filter((r) => r.tid === tid && r.call === name && !r.socket)
        .reduce((a, r) => a + r.count, 0);
      for (const [k, m] of hist) expected += m * (k * s - 1 + (1 - s) ** k);
      turns.push(hist);
    }
  }
  if (expected < MIN_EXPECTED_REPEATS || repeats > expected / 4) return null;
  const made = (m: number) =>
    turns.reduce((a, h) => a + [...h].reduce((b, [k, n]) => b + n * (1 - (1 - m) ** k), 0), 0);
  if (made(1) <= calls) return 1;
  let [lo, hi] = [0, 1];
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (made(mid) < calls) lo = mid;
    else hi = mid;
  }
  return Math.round(lo * 1e4) / 1e4;
}
