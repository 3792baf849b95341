import type { Profile } from '../model/index.js';

/** Instructions one iteration of the body kernel executes (see generate/body.ts). */
export const BODY_INSNS_PER_ITER = 12;

/** Instructions of body work per request: the tuned knob, or the original's instruction
 *  count scaled by the what-if knob. Before tuning, 85% of the original's count is a start
 *  that leaves room for the clone's own skeleton; tuning corrects it. */
export function bodyInsnsPerReq(p: Profile): number {
  const base = p.knobs.bodyInsnsPerReq ?? 0.85 * p.body.cpu.insnsPerReq;
  return Math.max(0, base * p.knobs.insnScale);
}

export function bodyIterations(p: Profile): number {
  return Math.round(bodyInsnsPerReq(p) / BODY_INSNS_PER_ITER);
}

/** The body's working set: a power of two, at least 4 KiB. */
export function bodyMemBytes(p: Profile): number {
  return 2 ** Math.max(12, Math.ceil(Math.log2(Math.max(1, p.body.bodyMemBytes))));
}
