import type { Place } from '../collect/bpftrace.js';
import type { LockSection, RequestType } from '../model/index.js';

/** A traced window's waits by place in the transaction, and its length. */
export interface PlaceWindow {
  rps: number;
  windowS: number;
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
 *  ways 1.0 for the branch's update, 8.5 for the tellers'. Where the requests' types lack a
 *  kind (none was profiled), no section. */
export function fitLocks(windows: PlaceWindow[], kinds: string[], requests: RequestType[]): LockSection[] {
  const release = kinds[kinds.length - 1];
  const has = (k: string) => requests.some((r) => r.op === k);
  const out: LockSection[] = [];
  for (let p = 0; p < kinds.length - 1 && out.length < 8; p++) {
    const op = kinds[p];
    if (op === release || !has(op) || !has(release)) continue;
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
    out.push({ op, nth, release, ways, byLoad });
  }
  return out;
}
