import {
  l1Points,
  L1_CURVE_MAX,
  reuseCurves,
  TARGETS,
  type PortableCpu,
  type Profile,
  type Workload,
} from '../model/index.js';
import { cloneLaunchSpec } from '../collect/target.js';
import { measureParts } from '../collect/cpu.js';
import { buildClone } from '../generate/build.js';
import { generateClone } from '../generate/index.js';
import { bodyPlan, bodyTarget, crowdLoads, type BodyPlan } from '../synth/body.js';
import { followsReuse } from '../synth/sides.js';
import { BRANCH_PART, MIX_PART, partName } from '../synth/layout.js';
import { BIG_BUDGET, blockInsns, mixInsns, nextBudget, overhead } from './budget.js';
import { AIM, at, l1Errors, mixGap, offTarget, signedErrors, tunePoints } from './figures.js';
import {
  adaptGain,
  BLAME,
  CURVE_GROUPS,
  GROUP_KNOBS,
  GROUPS,
  groupWorse,
  sameKnobs,
  type Group,
} from './gains.js';
import { branchRate, partOf, type Measured } from './measured.js';
import { withSkeleton } from './skeleton.js';
import { CODE_SIZE_STEPS, nextCrowd, nextSide, type ShapeCurves } from './solve.js';
import { trimKept } from './trims.js';

/** Most tuning iterations by default. Tuning is bounded by iterations, never by the clock, so
 *  a clone's tuning does not depend on the machine's speed or the workload's durations. Under a
 *  deadline the benches ran five or six (bench/HISTORY.md). */
export const TUNE_ITERATIONS = 6;

export interface TuneOptions {
  maxIterations?: number;
  /** Relative error at which instructions per request are on target. */
  tolerance?: number;
  /** Relative error at which a miss count is on target. */
  mpkiTolerance?: number;
  /** Absolute error, in misses per 1,000 instructions, at which a small miss count is on target. */
  mpkiAbsolute?: number;
  progress?: (msg: string) => void;
}

/** Feedback on the body's knobs from a per-function profile of the clone: each part (a data
 *  ring, a code segment, the random branches) is measured on its own at every sweep point.
 *  A ring or segment whose accesses reuse outside its bin is resized; the loads of all of them
 *  are solved against the original's curve with what the rest of the clone misses; the
 *  random branches are set by the mispredictions the rest leaves to them at their measured
 *  rate; the instruction budget so that the mix loop takes what the other parts leave.
 *  Regenerate, rebuild, repeat until on target or out of iterations, each step from the best
 *  iteration so far (after a worse one, half as far for the groups that did worse); keep the
 *  best, its instruction budget and random branches trimmed where they are off; the history
 *  goes into the profile. */
export async function tune(p: Profile, w: Workload, dir: string, opts: TuneOptions = {}): Promise<Profile> {
  const say = opts.progress ?? (() => {});
  const max = opts.maxIterations ?? TUNE_ITERATIONS;
  const tol = opts.tolerance ?? 0.02;
  const mpkiTol = opts.mpkiTolerance ?? 0.05;
  const abs = opts.mpkiAbsolute ?? 0.05;
  // Each group of knobs has its own gain, halved when its worst error changes sign (an
  // overshoot) and raised again while errors shrink too slowly.
  const gains: Record<Group, number> = { data: 1, code: 1, branch: 1, conflict: 1, codeConflict: 1 };
  let sinceBest = 0;
  /** The groups whose gains the last worse iteration halved. */
  let halved: Group[] = [];
  let cur: Profile = p.body.skeleton ? structuredClone(p) : await withSkeleton(structuredClone(p), w, say);
  const scale = cur.knobs.insnScale;
  const original = cur.body.original;
  const want = tunePoints(original);
  want.insns *= scale;
  const absPerReq = (abs * want.insns) / 1000;
  const history = [...cur.tuning];
  /** The next knobs from a measured iteration, at the current gains, `steps` taken before. */
  const step = ({ profile: cur, plan, m, part, got }: Measured, steps: number): Profile => {
    const t = bodyTarget(cur);
    // The part per connection stays as it is, its loads the rise the profile measured with
    // more connections (what a clone run with other connections follows) and its distance the
    // connections', not its size's; its measured misses are the rest's, and it counts for the
    // rings' distances as a ring of its lines over every connection. Counted as the rings'
    // evictions, which fewer ring loads were modelled to lessen, its misses held
    // memcached-churn's clone 14 to 22% over at 32, 128 and 256 KiB at every step: its part
    // missed 9 times a request at 256 KiB, where the original misses 7.2 in all between 256
    // KiB and 1 MiB.
    const conn = plan.conn.lines ? part(partName('data', 'conn')) : null;
    const dataParts = [...plan.rings.map((_, k) => part(partName('data', k))), ...(conn ? [conn] : [])];
    const dataRings = [
      ...plan.rings,
      ...(conn ? [{ lines: plan.conn.lines * w.connections, loadsPerReq: plan.conn.loadsPerReq }] : []),
    ];
    const codeParts = plan.segments.map((_, k) => part(partName('code', k)));
    // At a last level the data rings answer for the unified cache: they are wanted to miss
    // what the original's code and data miss there less what the clone's code does. The
    // code segments answer for the L1 sizes alone.
    const dataWant = original.dataCurve.map((q) =>
      q.bytes > L1_CURVE_MAX
        ? {
            bytes: q.bytes,
            missesPerReq: Math.max(
              0,
              q.missesPerReq + at(original.codeCurve, q.bytes) - at(m.codeCurve, q.bytes),
            ),
          }
        : q,
    );
    // The reuse curves, where the original, the clone and its skeleton have them.
    const shapes = shapeCurves(original, m, cur.body.skeleton ?? undefined, dataParts, codeParts);
    const data = nextSide(
      conn ? [...t.dataBins, t.dataBins[t.conn.bin ?? 0]] : t.dataBins,
      dataRings,
      dataParts.map((q) => q?.dataCurve ?? null),
      dataWant,
      m.dataCurve,
      cur.body.skeleton?.dataCurve ?? [],
      absPerReq,
      mpkiTol,
      gains.data,
      t.hotData,
      false,
      shapes?.data,
      t.dataPasses,
      false,
      dataRings.map((_, k) => k >= plan.rings.length),
    );
    const code = nextSide(
      t.codeBins,
      plan.segments,
      codeParts.map((q) => (q ? l1Points(q.codeCurve) : null)),
      l1Points(original.codeCurve),
      l1Points(m.codeCurve),
      l1Points(cur.body.skeleton?.codeCurve ?? []),
      absPerReq,
      mpkiTol,
      gains.code,
      t.hotCode,
      steps >= CODE_SIZE_STEPS,
      shapes?.code,
      t.codePasses,
      true,
    );
    // The random branches: what the rest of the clone mispredicts is not theirs to supply.
    const { own, rate } = branchRate({ plan, part });
    const hard = Math.max(0, (want.branch - (got.branch - own)) / rate);
    const next: Profile = {
      ...cur,
      knobs: {
        ...cur.knobs,
        dataLoads: data.loads.slice(0, plan.rings.length),
        dataLines: data.lines.slice(0, plan.rings.length),
        codeBlocks: code.loads,
        codeLines: code.lines,
        crowd: nextCrowd(original, m, part(partName('data', 'conflict')), plan.crowd, gains.conflict),
        codeCrowd: nextCrowd(
          original,
          m,
          part(partName('code', 'conflict')),
          plan.codeCrowd,
          gains.codeConflict,
          'I',
        ),
        hardBranchesPerReq: plan.hardBranchesPerReq + gains.branch * (hard - plan.hardBranchesPerReq),
        mixOverhead: overhead(cur, plan, m) ?? cur.knobs.mixOverhead,
      },
    };
    // The instruction budget: the mix loop takes what the other parts leave of the target,
    // each part at its measured cost per unit and its next count.
    const counts = (q: BodyPlan) => [
      ...q.rings.map((r) => r.loadsPerReq),
      ...q.segments.map((r) => r.loadsPerReq),
      crowdLoads(q.crowd),
      crowdLoads(q.codeCrowd),
      q.hardBranchesPerReq,
    ];
    const names = [
      ...plan.rings.map((_, k) => partName('data', k)),
      ...plan.segments.map((_, k) => partName('code', k)),
      partName('data', 'conflict'),
      partName('code', 'conflict'),
      BRANCH_PART,
    ];
    const kinds = [
      ...plan.rings.map(() => 'data'),
      ...plan.segments.map(() => 'code'),
      'data',
      'code',
      'branch',
    ];
    const irOf = (fn: string) => part(fn)?.insnsPerReq ?? 0;
    const nextPlan = bodyPlan({ ...next, knobs: { ...next.knobs, bodyInsnsPerReq: BIG_BUDGET / scale } });
    const budget = nextBudget(
      names.map((fn, k) => ({
        kind: kinds[k],
        ir: irOf(fn),
        now: counts(plan)[k],
        next: counts(nextPlan)[k],
        rescale: kinds[k] === 'code' ? blockInsns(nextPlan) / blockInsns(plan) : 1,
      })),
      { ir: irOf(MIX_PART), planned: mixInsns(plan) },
      want.insns - got.insns,
      BIG_BUDGET - mixInsns(nextPlan),
    );
    return { ...next, knobs: { ...next.knobs, bodyInsnsPerReq: budget / scale } };
  };
  let best: {
    rms: number;
    knobs: Profile['knobs'];
    errors: Record<string, number> | null;
    at: Measured | null;
  } = { rms: Infinity, knobs: cur.knobs, errors: null, at: null };
  for (let it = 0; it < max; it++) {
    const plan = generateClone(cur, dir);
    const binary = buildClone(dir);
    const { cpu: m, parts } = await measureParts(cloneLaunchSpec(binary, w), w, partOf);
    const part = (fn: string) => parts.get(fn) ?? null;
    const got = tunePoints(m);
    const error = (m.insnsPerReq - want.insns) / want.insns;
    // Kept by how far off it is as a whole: the scored figures, every L1 geometry's misses and
    // the mix's furthest class, which the verdict judges too (memcached's bench clone at
    // 232f766 came out 2.1 points over in conditional branches, the tolerance 2, and the keep
    // rule had not seen its mix).
    const l1 = l1Errors(original, m, mpkiTol, abs);
    const gap = mixGap(original, m);
    const { score, worst, rms } = offTarget(want, got, tol, mpkiTol, abs, {
      ...l1,
      ...(gap ? { mix: gap.pp / TARGETS.mixPp } : {}),
    });
    history.push({
      iteration: history.length,
      bodyInsnsPerReq: plan.insnsPerReq / scale,
      cloneInsnsPerReq: m.insnsPerReq,
      targetInsnsPerReq: want.insns,
      error,
      points: Object.fromEntries(
        Object.keys(want).map((k) => [k, { clone: got[k] ?? 0, original: want[k] }]),
      ),
      score,
      worst,
      rms,
      l1,
      ...(gap ? { mixPp: gap.pp } : {}),
      knobs: cur.knobs,
    });
    const l1s = Object.entries(l1).map(([k, e]) => `${k} ${e.toFixed(1)}`);
    const off = `x${score.toFixed(2)} by ${worst} ${got[worst]?.toFixed(2)}/${want[worst].toFixed(2)}, rms ${[rms.toFixed(2), ...l1s].join(' ')}`;
    say(
      `tuning ${it + 1}: ${Math.round(m.insnsPerReq)}/${Math.round(want.insns)} insns (${(error * 100).toFixed(1)}%), ${off}${gap ? `, mix ${gap.pp.toFixed(1)} pp (${gap.cls})` : ''}`,
    );
    const errors = signedErrors(want, got, mpkiTol, absPerReq);
    // Better as a whole (the root mean square of the errors, the L1s' over every geometry
    // counted as one figure each): an iteration that brings one figure a little nearer and
    // leaves the rest further off is not kept over one that brings most of them nearer. The
    // stop rule below still asks every scored figure to be on target.
    if (rms < best.rms) {
      // Better: the gains follow how the errors moved since the last better one.
      for (const g of Object.keys(GROUPS) as Group[])
        gains[g] = adaptGain(gains[g], best.errors, errors, GROUPS[g]);
      best = { rms, knobs: cur.knobs, errors, at: { profile: cur, plan, m, part, got } };
      sinceBest = 0;
      halved = [];
    } else {
      // Worse: the next step goes from the best again, half as far for each group whose own
      // errors grew (a group that did better takes its step again). If none did, the
      // instructions did; and if the blamed groups' shorter step did no better either, the
      // blame was wrong (one group's step moved another's figures, as the code segments'
      // loads move the 4-way point): all go half as far, or the step would repeat.
      sinceBest++;
      const all = Object.keys(GROUPS) as Group[];
      const worse = all.filter((g) => groupWorse(best.errors, errors, BLAME[g]));
      halved = worse.length && sinceBest === 1 ? worse : all;
      for (const g of halved) gains[g] = Math.max(0.25, gains[g] / 2);
    }
    if (score <= AIM) break;
    // Three iterations without a better one, each from the best at a shorter step: what is
    // left is beyond what the model of the parts can see.
    if (sinceBest >= 3) {
      say('tuning: no better in three iterations, keeping the best');
      break;
    }
    // A blamed group whose knobs a shorter step leaves as they were (at their floor, where
    // any step moves nothing) took the blame for another's step: all groups go half as far
    // instead, or the step would repeat and the next iteration measure as the last did.
    let next = step(best.at!, it);
    if (
      halved.length < Object.keys(gains).length &&
      halved.some((g) => GROUP_KNOBS[g].every((k) => sameKnobs(next.knobs[k], cur.knobs[k])))
    ) {
      for (const g of Object.keys(gains) as Group[])
        if (!halved.includes(g)) gains[g] = Math.max(0.25, gains[g] / 2);
      next = step(best.at!, it);
    }
    // Every gain at its floor, a step after a worse one repeats the last: the rings, segments
    // and conflict parts would run as measured and measure alike. What is left is for the trims.
    if (
      sinceBest > 0 &&
      CURVE_GROUPS.every((g) => GROUP_KNOBS[g].every((k) => sameKnobs(next.knobs[k], cur.knobs[k])))
    ) {
      say('tuning: the next step would repeat the last, keeping the best');
      break;
    }
    cur = next;
  }
  // The best measured knobs, whether or not the last iteration improved on them, with the
  // instruction count, branch misses and the L1's data misses trimmed where they are off.
  let knobs = best.knobs;
  if (best.at)
    knobs = await trimKept(
      best.at,
      want,
      { tol, mpkiTol, abs },
      scale,
      { ...cur, tuning: history },
      w,
      dir,
      say,
    );
  cur = { ...cur, knobs, tuning: history };
  generateClone(cur, dir); // the profile beside the sources carries its history
  buildClone(dir);
  return cur;
}

/** Both sides' reuse curves for the solve (see nextSide), where the original, the clone, its
 *  skeleton (if measured) and its parts have reuse tables: at a last level the data rings are
 *  wanted to miss what the original's code and data miss there less what the clone's code
 *  does, as on the sweep's curve. A side whose misses are not its reuse distances'
 *  (`followsReuse`) has none. */
function shapeCurves(
  original: PortableCpu,
  m: PortableCpu,
  skeleton: PortableCpu | undefined,
  dataParts: (PortableCpu | null)[],
  codeParts: (PortableCpu | null)[],
): { data?: ShapeCurves; code?: ShapeCurves } | null {
  if (!original.reuse || !m.reuse || (skeleton && !skeleton.reuse)) return null;
  const o = reuseCurves(original.reuse);
  const c = reuseCurves(m.reuse);
  const s = skeleton?.reuse ? reuseCurves(skeleton.reuse) : null;
  const curves = (q: PortableCpu | null) => (q?.reuse ? reuseCurves(q.reuse) : null);
  const side = (k: 'data' | 'code', v: ShapeCurves) => (followsReuse(original, k) ? v : undefined);
  return {
    data: side('data', {
      want: o.data.map((q) =>
        q.bytes > L1_CURVE_MAX
          ? {
              bytes: q.bytes,
              missesPerReq: Math.max(0, q.missesPerReq + at(o.codeLL, q.bytes) - at(c.codeLL, q.bytes)),
            }
          : q,
      ),
      got: c.data,
      skeleton: s?.data ?? [],
      parts: dataParts.map((q) => curves(q)?.data ?? null),
    }),
    code: side('code', {
      want: o.code,
      got: c.code,
      skeleton: s?.code ?? [],
      parts: codeParts.map((q) => curves(q)?.code ?? null),
    }),
  };
}
