import type { Place } from '../collect/bpftrace.js';
import type { LockSection, RequestType, SyscallRate } from '../model/index.js';

/** A traced window's waits by place in the transaction, and its length. */
export interface PlaceWindow {
  rps: number;
  windowS: number;
  /** Requests sent in it. */
  sent: number;
  places: Place[];
}

/** Waits a place needs, over every window, before a section is fitted to them: fewer are no
 *  evidence of a lock (a wait on a buffer's latch now and then). */
export const MIN_WAITS = 20;
/** Nor is a place where at most this share of the requests waited at every load. */
export const MIN_WAITED = 0.01;

/** Serialized sections from the waits inside a transaction's requests (`kinds`, its statement
 *  kinds in order; the last ends it and gives every lock taken in it). A place whose requests
 *  wait on another transaction's lock finds it held with the lock's busy share: with Poisson
 *  arrivals of rate r (transactions a second) at one of `ways` locks, each held H seconds from
 *  its taking to the release, a request waits with probability r * H / ways. So ways is the
 *  waits one lock would have made, r * H for each request over every window, over the waits
 *  seen. The clone's hold then follows from its own requests, as the original's did.
 *  Measured on PostgreSQL's TPC-B-like script at scale 1 (one branch row, ten tellers):
 *  ways 1.0 for the branch's update, 8.5 for the tellers'; at scale 16 (16 and 160) 12 and 28.
 *  Ways are the locks that make the waits seen, not the rows: where the rows are many, the
 *  other waits of a request (a latch, the log's insert lock) weigh more. Where the requests'
 *  types lack a kind (none was profiled), no section. */
export function fitLocks(windows: PlaceWindow[], kinds: string[], requests: RequestType[]): LockSection[] {
  const release = kinds[kinds.length - 1];
  const has = (k: string) => requests.some((r) => r.op === k);
  const out: LockSection[] = [];
  if (!has(release)) return out;
  for (let p = 0; p < kinds.length - 1 && out.length < 8; p++) {
    const op = kinds[p];
    if (op === release || !has(op)) continue;
    let waits = 0;
    let oneWay = 0;
    const byLoad: LockSection['byLoad'] = [];
    for (const w of windows) {
      const at = w.places[p];
      if (!at || at.requests === 0 || at.holds === 0 || w.windowS <= 0) continue;
      const rate = at.requests / w.windowS;
      const hold = at.holdNs / at.holds / 1e9;
      waits += at.waited;
      oneWay += at.requests * rate * hold;
      byLoad.push({ rps: w.rps, waited: at.waited / at.requests, holdUs: Math.round(hold * 1e6) });
    }
    if (waits < MIN_WAITS || !byLoad.some((b) => b.waited > MIN_WAITED)) continue;
    const ways = Math.min(4096, Math.max(1, Math.round(oneWay / waits)));
    const nth = kinds.slice(0, p + 1).filter((k) => k === op).length;
    const wait = waitOf(windows.map((w) => w.places[p]).filter((x) => x !== undefined));
    out.push({ op, nth, release, ways, wait, byLoad });
  }
  return out;
}

/** Each request type's share of the replayed calls, from the calls made inside the requests at
 *  each place of the transaction (`kinds` in order): a call's overall rate R (a request of any
 *  type) is divided between the types as their places made it, so that a type whose requests
 *  made a share c of the call in the traced windows makes R * c / (its share of requests) a
 *  request, and the types' rates by their shares come to R again. PostgreSQL's commit makes
 *  the fdatasync and the write-ahead log's pwrite64, every one of them: a clone that made them
 *  on any statement at 1 in 7 held its row locks without the fsync (its branch's update
 *  waited on 9.6% of transactions at 2,380 statements a second, the original's on 25.5%).
 *  Calls no place made (outside every request) keep their rate on every type. Null where the
 *  windows have no calls by place. */
export function typeReplay(
  replay: SyscallRate[],
  windows: PlaceWindow[],
  kinds: string[],
  requests: RequestType[],
): Map<string, SyscallRate[]> | null {
  const made = new Map<string, Map<string, number>>(); // op -> call -> count
  for (const w of windows)
    w.places.forEach((p, i) => {
      const op = kinds[i];
      if (op === undefined) return;
      let m = made.get(op);
      if (!m) made.set(op, (m = new Map()));
      for (const [name, n] of p.calls) m.set(name, (m.get(name) ?? 0) + n);
    });
  return splitByType(replay, made, requests);
}

/** The replay divided between the request types as `made` says they made each call (op ->
 *  call -> count, in any unit the types share): a type whose requests made a share c of a
 *  call makes R * c / (its share of requests) a request, a call made once a turn marks at
 *  its turnMarks * c / share (at most 1), and the types' rates by their shares come to the
 *  call's rate R again. Calls no type made keep their rate on every type; null where none
 *  made any of the replay's. */
export function splitByType(
  replay: SyscallRate[],
  made: Map<string, Map<string, number>>,
  requests: RequestType[],
): Map<string, SyscallRate[]> | null {
  const total = new Map(
    replay.map((c) => [c.name, [...made.values()].reduce((a, m) => a + (m.get(c.name) ?? 0), 0)]),
  );
  if (![...total.values()].some((n) => n > 0)) return null;
  const out = new Map<string, SyscallRate[]>();
  for (const r of requests)
    out.set(
      r.op,
      replay.map((c) => {
        const all = total.get(c.name)!;
        if (all === 0 || r.share <= 0) return c;
        // The type's share of the call over its share of the requests (a cache's touches too).
        const f = (made.get(r.op)?.get(c.name) ?? 0) / all / r.share;
        return {
          ...c,
          perReq: c.perReq * f,
          ...(c.cold ? { cold: { ...c.cold, touches: c.cold.touches * f } } : {}),
          ...(c.turnMarks !== undefined ? { turnMarks: Math.min(1, round4(c.turnMarks * f)) } : {}),
        };
      }),
    );
  return out;
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** The place in the transaction (`kinds` in order) of a section's statement. */
export const placeOf = (kinds: string[], l: LockSection) =>
  kinds.findIndex((k, i) => k === l.op && kinds.slice(0, i + 1).filter((x) => x === k).length === l.nth);

/** The calls a latch's waiter sleeps in. */
const LATCH_WAITS = ['epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'poll', 'ppoll'];
const wakes = (p: Place) => LATCH_WAITS.reduce((a, n) => a + (p.calls.get(n) ?? 0), 0);

/** How a place's waits sleep: on a latch where its requests, in the windows where some
 *  waited, made more calls of LATCH_WAITS than of futex (a thread's idle waits fall between
 *  requests, outside every place), in a futex otherwise. PostgreSQL's row locks are waited
 *  for on its latches: the branch's update made 451 epoll_wait and 140 futex calls at scale
 *  1, 98 and 37 at scale 16 (where the tellers' waits were mostly buffer locks, 10 and 68);
 *  the commit's waits (the log's flush) are futex, 1,550 against none at scale 16. */
export function waitOf(places: Place[]): 'latch' | 'futex' {
  const waited = places.filter((p) => p.waited > 0);
  const latch = waited.reduce((a, p) => a + wakes(p), 0);
  const futex = waited.reduce((a, p) => a + (p.calls.get('futex') ?? 0), 0);
  return latch > futex ? 'latch' : 'futex';
}

/** The replay and the windows without the calls of the latches at places `at`, which a
 *  clone's latches make themselves: each wake inside a request there (a call of
 *  LATCH_WAITS) read its signal (`read`) and was sent by a giver (`kill`). So `read` and
 *  `kill` lose those wakes a request over every window, each of those places' `read` its own
 *  wakes, and every place's `kill` its share of them. At PostgreSQL's scale 1: 515 wakes,
 *  514 reads and 515 kills in 1,346 transactions. */
export function withoutLatchCalls(
  replay: SyscallRate[],
  windows: PlaceWindow[],
  at: number[],
): { replay: SyscallRate[]; windows: PlaceWindow[] } {
  if (!at.length) return { replay, windows };
  const of = (w: PlaceWindow) => at.map((i) => w.places[i]).filter((p) => p !== undefined);
  const all = windows.reduce((a, w) => a + of(w).reduce((x, p) => x + wakes(p), 0), 0);
  const kills = windows.flatMap((w) => w.places).reduce((a, p) => a + (p.calls.get('kill') ?? 0), 0);
  const sent = Math.max(
    1,
    windows.reduce((a, w) => a + w.sent, 0),
  );
  const keep = kills > 0 ? Math.max(0, kills - all) / kills : 1;
  const less = (c: SyscallRate) =>
    c.name === 'read' || c.name === 'kill'
      ? { ...c, perReq: Math.round(Math.max(0, c.perReq - all / sent) * 1e4) / 1e4 }
      : c;
  return {
    replay: replay.map(less).filter((c) => c.perReq > 0 || c.perConn || c.cold),
    windows: windows.map((w) => ({
      ...w,
      places: w.places.map((p, i) => {
        const calls = new Map(p.calls);
        if (at.includes(i) && calls.has('read'))
          calls.set('read', Math.max(0, calls.get('read')! - wakes(p)));
        if (calls.has('kill')) calls.set('kill', calls.get('kill')! * keep);
        return { ...p, calls };
      }),
    })),
  };
}
