/* conn_mem.h -- the body's lines of one connection (twin_body_ctx.conn_mem). */
#ifndef TWIN_CONN_MEM_H
#define TWIN_CONN_MEM_H

#include <stdint.h>
#include <stdlib.h>

/* `lines` lines in a cycle of pointers, line i to line i + 1, the cursor in the first
 * line's second word; NULL without memory. */
static inline uint64_t *conn_body_mem(uint32_t lines)
{
    uint64_t *m = aligned_alloc(64, (size_t)lines * 64);
    if (!m)
        return NULL;
    for (uint32_t i = 0; i < lines; i++)
        m[i * 8] = (uint64_t)(uintptr_t)(m + (i + 1) % lines * 8);
    m[1] = (uint64_t)(uintptr_t)m;
    return m;
}

#endif
