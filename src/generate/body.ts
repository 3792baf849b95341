import { BODY_INSNS_PER_ITER } from '../synth/body.js';

/** The body kernel: one asm statement, a counted loop of BODY_INSNS_PER_ITER instructions
 *  (a load, a store, integer ALU work, a multiply and the loop branch) striding over the
 *  thread's working set. Every register it writes is an output; it reads and writes memory. */
export function emitBody(iterations: number[]): string {
  const lines = [
    `/* Iterations of the body kernel per request type (${BODY_INSNS_PER_ITER} instructions each). */`,
    `static const uint64_t body_iterations[${iterations.length}] = { ${iterations.map((n) => `${n}u`).join(', ')} };`,
    '',
    'static void clone_body(uint32_t op, twin_body_ctx *ctx)',
    '{',
    `    uint64_t n = body_iterations[op < ${iterations.length}u ? op : 0];`,
    '    if (n == 0 || ctx->mem == NULL || ctx->mem_bytes < 128)',
    '        return;',
    '    const uint64_t mask = (uint64_t)(ctx->mem_bytes - 1) & ~(uint64_t)63;',
    '    uint64_t idx = ctx->rng & mask, acc = ctx->sink, t0, t1, t2;',
    '    __asm__ volatile(',
    '        "1:\\n\\t"',
    '        "movq (%[mem],%[idx]), %[t0]\\n\\t"',
    '        "addq %[t0], %[acc]\\n\\t"',
    '        "movq %[acc], %[t1]\\n\\t"',
    '        "shrq $7, %[t1]\\n\\t"',
    '        "xorq %[t1], %[acc]\\n\\t"',
    '        "imulq $40503, %[acc], %[t2]\\n\\t"',
    '        "addq %[t2], %[acc]\\n\\t"',
    '        "movq %[acc], 8(%[mem],%[idx])\\n\\t"',
    '        "addq $4160, %[idx]\\n\\t"',
    '        "andq %[mask], %[idx]\\n\\t"',
    '        "subq $1, %[n]\\n\\t"',
    '        "jnz 1b\\n\\t"',
    '        : [idx] "+r"(idx), [acc] "+r"(acc), [n] "+r"(n), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2)',
    '        : [mem] "r"(ctx->mem), [mask] "r"(mask)',
    '        : "cc", "memory");',
    '    ctx->sink = acc;',
    '}',
  ];
  return lines.join('\n');
}
