/* proto.h -- request/response protocols the load generator speaks.
 *
 * A protocol is a plug-in of two functions: one writes a request, one finds
 * where the first response in a byte stream ends. Responses on a connection
 * come back in request order, so finding boundaries exactly is all the load
 * generator needs to match each response to its request. Adding a protocol
 * is adding one proto_<name>.c that defines a proto_type and listing it in
 * proto_find(). */
#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>

/* GET and SET are every protocol's read and write (HTTP has GET alone); the
 * rest are redis data-structure commands, RESP only. */
typedef enum {
    PROTO_GET = 0,
    PROTO_SET,
    PROTO_INCR,
    PROTO_LPUSH,
    PROTO_LRANGE,
    PROTO_HSET,
    PROTO_HGET,
    PROTO_VERBS
} proto_verb;

#define PROTO_VERB(v) (1u << (v))

/* Lower-case names, as --req and the JSON result spell them. */
extern const char *const proto_verb_names[PROTO_VERBS];

typedef struct {
    proto_verb verb;
    const char *key; /* memcached, RESP */
    size_t key_len;
    const char *value; /* SET, LPUSH, HSET */
    size_t value_len;
    unsigned field;   /* HSET, HGET: the hash field f<field> */
    unsigned count;   /* LPUSH values and HSET fields (f<field> on) sent at once; 0 counts as 1 */
    const char *path; /* HTTP request target */
    const char *host; /* HTTP Host header */
    uint64_t key_num; /* the key's number (the one in key and path) */
} proto_request;

typedef enum {
    PROTO_INCOMPLETE = 0, /* not a whole response yet */
    PROTO_OK,             /* one response of *resp_len bytes */
    PROTO_SERVER_ERROR,   /* one well-formed error response of *resp_len bytes */
    PROTO_BAD             /* not a response: the stream is out of step for good */
} proto_result;

typedef struct {
    const char *name;
    unsigned verbs; /* PROTO_VERB bits of the verbs it can send */
    /* Writes req into out, which holds at least proto_request_bound(req)
     * bytes; returns the number of bytes written. */
    size_t (*format)(char *out, const proto_request *req);
    /* Looks at the first response in buf[0..len). On PROTO_INCOMPLETE,
     * *resp_len is the least total length known to be needed (0 when not
     * known yet), so the caller can skip parsing again until that much has
     * arrived. */
    proto_result (*parse)(const char *buf, size_t len, size_t *resp_len);
} proto_type;

extern const proto_type proto_memcached;
extern const proto_type proto_resp;
extern const proto_type proto_http;

/* The protocol called name, or NULL. */
const proto_type *proto_find(const char *name);

/* The verb called name, or -1. */
int proto_verb_find(const char *name);

/* An upper bound on any protocol's encoding of req. */
size_t proto_request_bound(const proto_request *req);

/* Helpers shared by the parsers. */

/* Offset of the first "\r\n" in buf[from..len), or -1. */
long proto_find_crlf(const char *buf, size_t from, size_t len);
/* Parses decimal digits buf[0..len) (no sign, at least one digit, at most
 * 18) into *out; returns 0, or -1 when malformed. */
int proto_parse_uint(const char *buf, size_t len, unsigned long long *out);

#endif
