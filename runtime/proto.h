/* proto.h -- request parsing and response building, one small vtable per
 * protocol (proto_memcached.c, proto_resp.c, proto_http.c, proto_pg.c).
 *
 * parse() looks at the unconsumed bytes of a connection and returns the
 * length of the first complete request, PROTO_MORE when more bytes are
 * needed, or PROTO_BAD for input that cannot be a request. It never blocks,
 * never allocates and never reads past len. Pointers it stores in the
 * proto_req point into buf and live until the caller compacts its buffer
 * (or, for a verb the protocol names itself, at a constant).
 *
 * respond() appends the reply to one request. A sized reply is exactly
 * `size` bytes on the wire whenever the protocol's syntax allows it. */
#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "twin.h"

#define PROTO_MORE 0
#define PROTO_BAD  (-1)

/* The largest request a connection buffers (a memcached set with its data,
 * an HTTP request with its body); larger ones are answered with an error. */
#define PROTO_MAX_REQUEST (8u << 20)

/* `n` payload bytes, from byte `from` of the payload on, that go on the wire
 * before data[at]. */
typedef struct {
    size_t at, from, n;
} proto_ref;

/* Bytes to send: `data`, with payload by reference where `gather` (a send call
 * that gathers pieces, sendmsg or writev, sends it from where it lies, as a
 * server sends a value from its store), else copied in (write and sendto send
 * one buffer: a server using them copied its reply together). `wire` is all
 * the bytes to send, data and references. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    proto_ref *refs;
    size_t n_refs, refs_cap;
    size_t wire;
    int gather;
} proto_buf;

/* At most this many pieces go to one gathering send. */
#define PROTO_IOV_MAX 64

typedef enum {
    PROTO_REQ_SIZED, /* a request answered with a reply of the sampled size */
    PROTO_REQ_FIXED, /* a request answered with `reply` (STORED, +OK, ...) */
    PROTO_REQ_OTHER, /* a well-formed request of a verb the protocol does not know */
    PROTO_REQ_NONE   /* not a request (empty line, empty array): `reply` if any */
} proto_kind;

typedef struct {
    proto_kind kind;
    const char *verb;
    size_t verb_len;
    const char *key; /* memcached and RESP: the first key; HTTP: the target; else NULL */
    size_t key_len;
    const char *reply; /* FIXED and NONE replies; with PROTO_BAD, the error reply */
    size_t reply_len;
    int noreply;     /* memcached noreply: serve, answer nothing */
    int close;       /* close the connection after this reply */
    int head;        /* HTTP HEAD: headers only */
    size_t need;     /* with PROTO_MORE: the request's full length if known */
    uint32_t fields; /* PostgreSQL: a SELECT's columns; else 0 */
} proto_req;

typedef struct {
    const char *name;
    long (*parse)(const char *buf, size_t len, proto_req *req);
    /* `named`: the verb matched one of the clone's ops by name. */
    int (*respond)(const proto_req *req, int named, uint32_t size, proto_buf *out);
} proto_ops;

extern const proto_ops proto_memcached;
extern const proto_ops proto_resp;
extern const proto_ops proto_http;
extern const proto_ops proto_postgres;

/* Fills the payload buffer; call once before any thread serves. */
void proto_init(void);
const proto_ops *proto_get(twin_protocol protocol);

int proto_buf_reserve(proto_buf *b, size_t n);
int proto_buf_append(proto_buf *b, const void *p, size_t n);
/* 0, or a compile-time error where `s` is a pointer rather than an array: its size is
 * then not the string's. */
#define PROTO_ARRAY(s)                                                                                       \
    (0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(s), __typeof__(&(s)[0]))]))

/* Appends a literal (or a character array holding a string). */
#define proto_buf_appends(b, s) proto_buf_append((b), (s), sizeof(s) - 1 + PROTO_ARRAY(s))
int proto_buf_append_u64(proto_buf *b, uint64_t v);
/* Appends `n` copies of the byte `c`. */
int proto_buf_append_fill(proto_buf *b, char c, size_t n);
int proto_buf_append_payload(proto_buf *b, size_t n);
/* Appends what `src` holds from its wire byte `off` on. */
int proto_buf_append_tail(proto_buf *b, const proto_buf *src, size_t off);
/* The pieces of the wire bytes from `off` on, at most `max`; how many. */
int proto_buf_pieces(const proto_buf *b, size_t off, struct iovec *iov, int max);
/* Empties the buffer, its memory kept. */
static inline void proto_buf_clear(proto_buf *b)
{
    b->len = b->n_refs = b->wire = 0;
}
void proto_buf_free(proto_buf *b);

size_t proto_digits(uint64_t v);

/* Solves total = fixed + digits(n) + n + pad for the largest body n, with
 * pad 0 or 1 (the one size a decimal length cannot reach at each power of
 * ten). TWIN_ERR when total is below fixed + 1 (no body of length 0 fits). */
int proto_fit(uint32_t total, size_t fixed, size_t *n, size_t *pad);

/* Parses a decimal without sign; TWIN_ERR on anything else or above max. */
int proto_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Whether a byte is a letter. */
static inline unsigned proto_letter(unsigned char c)
{
    return (unsigned)((c | 0x20u) - 'a') < 26u;
}

/* Case-insensitive comparison of a counted token with a word of `wl` bytes,
 * without a branch on the bytes: a parser asks for several words a request,
 * and a compare that stops at the first byte that differs mispredicts where
 * the requests' tokens differ. A word's letters match either case of the
 * token's: its bytes are constants where it is a literal, and each test is an
 * or and an xor. (A letter differs from its other case in bit 5 alone.) */
static inline int proto_token_eq(const char *tok, size_t len, const char *word, size_t wl)
{
    if (len != wl)
        return 0;
    unsigned diff = 0;
    for (size_t i = 0; i < wl; i++) {
        unsigned char w = (unsigned char)word[i], case_bit = proto_letter(w) ? 0x20 : 0;
        diff |= (((unsigned char)tok[i] | case_bit) ^ (w | case_bit));
    }
    return diff == 0;
}

/* The same with a literal, whose length the compiler knows (the compare unrolled). */
#define proto_token_is(tok, len, word)                                                                       \
    proto_token_eq((tok), (len), (word), sizeof(word) - 1 + PROTO_ARRAY(word))

#endif
