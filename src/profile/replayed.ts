/** Traits of the replayed calls beyond their rates, from the serving threads of every traced
 *  window: how a map is made, and which calls come after the reply. */
import { SEND_CALLS } from '../collect/bpftrace.js';
import type { Observation } from '../collect/observe.js';
import type { SizeBins } from '../model/index.js';
import { mergeBins } from './skeleton.js';

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
  const bit = 1 << SEND_CALLS.indexOf(send as (typeof SEND_CALLS)[number]);
  if (bit < 1) return 0;
  return windows
    .flatMap((w) => (w.x.trace!.after ?? []).filter((a) => w.tids.has(a.tid)))
    .filter((a) => a.call === name && a.sends & bit)
    .reduce((n, a) => n + a.count, 0);
}
