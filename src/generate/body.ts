import { branchesPerStep, FILLER_BYTES, STATE_BYTES, type BodyPlan } from '../synth/body.js';
import { CONFLICT_BURST } from '../synth/crowd.js';
import {
  bodySlot,
  BRANCH_PART,
  crowdOffset,
  MIX_PART,
  MIX_SLOT,
  partName,
  RING_SLOT,
  type ChainSegment,
} from '../synth/layout.js';
import { passOrder, wholeWalks } from '../synth/passes.js';
import { chainsOf } from '../synth/chains.js';
import { emitBranches, emitMix, emitRingWalk } from './asm.js';

/** A part's rate a request, in 1,024ths (runtime/body.h: whole units by a shift, not a
 *  division). */
const rate = (x: number) => Math.round(x * 1024);

/** The body of clone.c. The rings and the chain's cursors are the process's, shared by its
 *  serving threads (laid out once, by the first of them); each thread keeps its own state at
 *  the start of its body memory (PRNG, fractional-count accumulators) and its filler region.
 *  Each part is one asm statement with no control flow in or out of it; every register it
 *  writes is an output. */
export function emitBody(plan: BodyPlan, segs: ChainSegment[]): string {
  const rings = plan.rings.flatMap((r, bin) =>
    Math.round(r.lines) > 0
      ? [
          {
            name: partName('data', bin),
            bin,
            lines: Math.round(r.lines),
            loadsPerReq: r.loadsPerReq,
            chains: chainsOf(
              plan.ringChains,
              Math.round(r.lines),
              r.loadsPerReq / Math.max(1, plan.ringRounds),
            ),
          },
        ]
      : [],
  );
  const arr = (xs: number[]) => `{ ${(xs.length ? xs : [0]).map((x) => `${x}u`).join(', ')} }`;
  // A part's rate a request, in 1,024ths: with request types, each type's (the rate times the
  // type's multiple, shifted back) worked out here into a row of `op_rate` a type, indexed in
  // the order the calls are written, so that a request reads its rates rather than multiplying
  // them (the body's own instructions go to its parts); without types, the rate itself.
  const perOp = plan.ops.length > 0;
  const opRates: number[][] = plan.ops.map(() => []);
  const scaled = (r: number, multiple: (o: BodyPlan['ops'][number]) => number) => {
    if (!perOp) return `${r}u`;
    plan.ops.forEach((o, j) => opRates[j].push(Math.floor((r * rate(multiple(o))) / 1024)));
    return `R[${opRates[0].length - 1}]`;
  };
  const ringCall = (r: (typeof rings)[number], i: number) =>
    `${r.name}(&ring_cur[${i} * RING_CHAINS], &st[ST_ACC_RING + ${i}], filler);`;
  const chains = Math.max(1, ...rings.map((r) => r.chains));
  // The rings are walked in rounds, each a pass of every ring with its share of the ring's
  // loads (plan.ringRounds: one call a request walks most of a ring smaller than its loads at
  // its own size). With request types, a type's passes a request are its table's times those.
  const rounds = Math.max(1, plan.ringRounds);
  const passLoop = perOp
    ? 'for (n = body_units(&st[ST_ACC_PASS], op_pass[o]); n; n--)'
    : rounds > 1
      ? `for (n = ${rounds}; n; n--)`
      : null;
  const ringCalls = passLoop
    ? [`    ${passLoop} {`, ...rings.map((r, i) => `        ${ringCall(r, i)}`), '    }']
    : rings.map((r, i) => `    ${ringCall(r, i)}`);
  // A segment's call: its blocks a request (a pass's share of them) from its table's multiple;
  // where a pass's share is a whole walk or more, whole walks from its first block (wholeWalks).
  const segMultiple = (s: ChainSegment) => (o: BodyPlan['ops'][number]) =>
    s.bin === undefined ? o.crowd : (o.segments[s.bin] ?? 1);
  const segCall = (s: ChainSegment, i: number, passes = 1) =>
    wholeWalks(s, passes)
      ? `    for (n = body_units(&st[ST_ACC_SEG + ${i}], ${scaled(rate(s.loadsPerReq / passes / s.lines), segMultiple(s))}); n; n--)
        ${s.name}(0, ${s.lines}u, filler + 16);`
      : `    if ((n = ${s.stride ? 'body_burst' : 'body_units'}(&st[ST_ACC_SEG + ${i}], ${scaled(rate(s.loadsPerReq / passes), segMultiple(s))})) != 0)
        ${s.name}(__atomic_fetch_add(&seg_cur[${i}], n, __ATOMIC_RELAXED) % ${s.lines}u, n, filler + 16);`;
  // The footprint segments in their rounds (passOrder), then the crowd groups.
  const footprint = segs.flatMap((s, i) => (s.rounds ? [i] : []));
  const segCalls = [
    ...passOrder(footprint.map((i) => segs[i].rounds!)).map(([j]) => {
      const i = footprint[j];
      return segCall(segs[i], i, segs[i].rounds!.length);
    }),
    ...segs.flatMap((s, i) => (s.rounds ? [] : [segCall(s, i)])),
  ];
  const crowdCalls = plan.crowd.map(
    (
      g,
      j,
    ) => `    if ((n = body_burst(&st[ST_ACC_CROWD + ${j}], ${scaled(rate(g.loadsPerReq), (o) => o.crowd)})) != 0)
        ${partName('data', 'conflict')}(&crowd_cur[${j}], n);`,
  );
  const connCall = `    if (ctx->conn_mem)
        ${partName('data', 'conn')}(ctx->conn_mem + 1, &st[ST_ACC_CONN], filler);`;
  const hardRate = rate(plan.hardBranchesPerReq / branchesPerStep(plan.hardP));
  const mixRate = rate(plan.mix.itersPerReq);
  const lastCalls = [
    `    st[ST_PRNG] = ${BRANCH_PART}(st[ST_PRNG], body_units(&st[ST_ACC_HARD], ${scaled(hardRate, (o) => o.hard)}), &ctx->sink);`,
    `    ${MIX_PART}(filler, body_units(&st[ST_ACC_MIX], ${scaled(mixRate, (o) => o.mix)}), ctx);`,
  ];
  const opTables = perOp
    ? [
        `#define N_OPS ${plan.ops.length}u`,
        `static const UNUSED uint64_t op_pass[N_OPS] = ${arr(plan.ops.map((o) => rate(o.passes * rounds)))};`,
        `/* Each type's rate of each part in turn, in 1,024ths: the part's rate times the type's multiple. */`,
        `static const uint64_t op_rate[N_OPS][${opRates[0].length}] = { ${opRates.map(arr).join(', ')} };`,
      ].join('\n')
    : '#define N_OPS 1u /* every request type runs the same body */';
  return `#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Body parts per request, in 1,024ths (carried from request to request): mix-loop
 * iterations, PRNG steps of the random branches, blocks of each code segment (one per
 * footprint bin); loads of each data ring (one per reuse-distance bin) whole, and a
 * fraction carried in 65,536ths by the walk itself. Each part is a function of its own (twin_data_<bin>, twin_code_<bin>, twin_branch, twin_mix),
 * never inlined, so that a per-function profile of the clone says what each part costs. */
#define N_RINGS ${rings.length}u
#define N_SEGS ${segs.length}u
#define STATE_BYTES ${STATE_BYTES}u
#define FILLER_BYTES ${FILLER_BYTES}u
#define HARD_THRESHOLD ${Math.round(plan.hardP * 2 ** 32)}u
/* Never inlined, and never folded into an identical function (GCC's -fipa-icf would merge the
 * ring walks), so that each part keeps its own name and code. */
#if defined(__clang__)
#define PART __attribute__((noinline))
#else
#define PART __attribute__((noipa))
#endif
#define UNUSED __attribute__((unused)) /* a body with no rings or no segments */
/* The layout: each ring walk in a slot of ${RING_SLOT} bytes, then the conflict walk and the
 * random branches (their code the same whatever the knobs), then clone_body in a slot sized
 * by its calls, then the mix loop, then the cold helpers: in this order (the build keeps it:
 * -fno-toplevel-reorder), each slot padded to its end (SLOT_END; an assembler error if its
 * function outgrew it). A part's lines then lie where they lay whatever the knobs, and tuning
 * sees the misses its knobs make, not those of code shifted across line boundaries. */
#define LINE_START __attribute__((aligned(64)))
#define SLOT_END(fn, bytes) __asm__(".pushsection .text\\n\\t.org " #fn " + " #bytes ", 0xcc\\n\\t.popsection")
static const UNUSED uint64_t ring_lines[] = ${arr(rings.map((r) => r.lines))};
/* Lines each ring walks in order before a jump (runtime/ring.h). */
static const UNUSED uint64_t ring_run[] = ${arr(rings.map((r) => plan.ringRuns[r.bin] ?? 1))};

/* Cursors each ring is walked by, spread evenly round it (runtime/body.h). */
static const UNUSED uint64_t ring_chains[] = ${arr(rings.map((r) => r.chains))};
#define RING_CHAINS ${chains}u

/* Shared by the serving threads: each ring's cursors (RING_CHAINS a ring), each segment's
 * position. */
static const unsigned n_rings = N_RINGS;
static uint64_t ring_cur[(N_RINGS ? N_RINGS : 1) * RING_CHAINS];
/* The crowd groups: each its lines one stride apart, in a few sets of every cache of few
 * enough sets; each group a few lines further into its stride than the last, in sets of
 * its own. */
#define N_CROWD ${plan.crowd.length}u
static const unsigned n_crowd = N_CROWD;
#define CONFLICT_BURST ${CONFLICT_BURST}u
static const UNUSED uint64_t crowd_lines[] = ${arr(plan.crowd.map((g) => g.lines))};
static const UNUSED uint64_t crowd_stride[] = ${arr(plan.crowd.map((g) => g.stride))};
static const UNUSED uint64_t crowd_offset[] = ${arr(plan.crowd.map((g, j) => crowdOffset(g.stride, j)))};
static uint64_t crowd_cur[N_CROWD ? N_CROWD : 1];
static UNUSED uint64_t seg_cur[N_SEGS ? N_SEGS : 1];
static pthread_once_t rings_once = PTHREAD_ONCE_INIT;
${opTables}

/* State words at the start of a thread's body memory: fractions carried for each part's
 * rate, and for the passes through the rings (each request type its own count). */
enum { ST_INIT, ST_PRNG, ST_ACC_HARD, ST_ACC_MIX, ST_ACC_RING, ST_ACC_SEG = ST_ACC_RING + (N_RINGS ? N_RINGS : 1), ST_ACC_CROWD = ST_ACC_SEG + (N_SEGS ? N_SEGS : 1), ST_ACC_PASS = ST_ACC_CROWD + (N_CROWD ? N_CROWD : 1), ST_ACC_CONN, ST_END };
_Static_assert(ST_END * 8 <= STATE_BYTES, "the body's state words outgrow STATE_BYTES");

${segs.map((s) => `void ${s.name}(uint64_t entry, uint64_t k, uint64_t *mem);`).join('\n')}

/* The helpers, defined after the parts they serve (see the layout above). */
static uint64_t body_rand(uint64_t *x);
static void body_ring_init(uint64_t *ring, uint64_t lines, uint64_t run, uint64_t *rng);
static void body_no_memory(void);
static void body_rings_init(void);
static void clone_body_init(twin_body_ctx *ctx);
static uint64_t body_units(uint64_t *acc, uint64_t rate);
/* The share of a request's body the running call does (twin_body_ctx.share), in 1,024ths. */
static __thread uint64_t body_share = 1024;
static UNUSED uint64_t body_burst(uint64_t *acc, uint64_t rate);
static PART void ${MIX_PART}(uint64_t *mem, uint64_t n, twin_body_ctx *ctx);

${rings.map((r) => `${emitRingWalk(r.name, r.loadsPerReq / rounds, r.chains)}SLOT_END(${r.name}, ${RING_SLOT});\n`).join('\n')}
/* A crowd group: n loads round its cycle, counted (a burst's one loop exit). */
static PART UNUSED void ${partName('data', 'conflict')}(uint64_t *cur, uint64_t n)
{
    uint64_t p;
    __asm__ volatile(
        "movq (%[cur]), %[p]\\n"
        "1:\\n\\t"
        "movq (%[p]), %[p]\\n\\t"
        "subq $1, %[n]\\n\\t"
        "jnz 1b\\n\\t"
        "movq %[p], (%[cur])\\n\\t"
        : [p] "=&r"(p), [n] "+r"(n)
        : [cur] "r"(cur)
        : "cc", "memory");
}
/* The served connection's lines (runtime/conn.c lays them out), walked as a ring is. */
${emitRingWalk(partName('data', 'conn'), plan.conn.loadsPerReq)}SLOT_END(${partName('data', 'conn')}, ${RING_SLOT});
${emitBranches(plan.hardP)}
static LINE_START void clone_body(uint32_t op, twin_body_ctx *ctx)
{
    const uint32_t o = op < N_OPS ? op : 0;
    (void)o;${perOp ? '\n    const uint64_t *R = op_rate[o];' : ''}
    if (ctx->mem_bytes < STATE_BYTES + FILLER_BYTES || ctx->mem == NULL)
        return;
    uint64_t *st = ctx->mem;
    uint64_t *filler = (uint64_t *)((char *)ctx->mem + STATE_BYTES);
    body_share = ctx->share ? ctx->share : 1024;
    if (!st[ST_INIT])
        clone_body_init(ctx);
    uint64_t n;
${[...segCalls, ...ringCalls].join('\n')}
${crowdCalls.join('\n')}
${connCall}
    (void)n;
${lastCalls.join('\n')}
}
SLOT_END(clone_body, ${bodySlot(rings.length + plan.crowd.length, segCalls.length, perOp)});

${emitMix(plan.mix.units)}SLOT_END(${MIX_PART}, ${MIX_SLOT});
#include "body.h"`;
}
