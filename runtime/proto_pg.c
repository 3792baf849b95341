/* proto_pg.c -- the PostgreSQL v3 wire protocol, simple query.
 *
 * A StartupMessage is answered AuthenticationOk, the parameters libpq reads,
 * BackendKeyData and ReadyForQuery, sized by the server_version value ("15.0"
 * and padding); SSLRequest and GSSENCRequest get 'N' (no encryption), and a
 * CancelRequest closes. A query is served by its first word: a row set (SELECT
 * and kin) is one row whose first column is the number 1, zero-padded to the
 * sampled size, and whose further columns (one per item of a SELECT's list)
 * are NULL; INSERT, UPDATE and DELETE answer a tag whose row count is padded
 * the same way; other verbs their tag alone. Every reply ends in
 * ReadyForQuery, whose status is 'T' (in a block) after BEGIN and 'I' (idle)
 * after any other verb: the parser keeps no state, and a string of several
 * statements is answered for its first. Terminate closes; any other message
 * (Parse, Bind, Execute, ...) and malformed input get an ErrorResponse, and
 * the connection is closed. */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "proto.h"

#define PG_MAX_STARTUP 10000
#define PG_MAX_FIELDS  64
#define PG_MAX_TAG     63 /* a verb longer than an identifier is cut in its tag */
/* libpq refuses a message of more than this many bytes unless it is a row,
 * a row description or an error: padded tags and parameters stay below. */
#define PG_MAX_SHORT 30000
#define PG_PROTOCOL3 196608u /* 3.0 */
#define PG_CANCEL    80877102u
#define PG_SSL       80877103u
#define PG_GSSENC    80877104u
#define PG_READY     6  /* ReadyForQuery's bytes */
#define PG_COLUMN    20 /* a RowDescription's bytes a column */
#define PG_RESERVE   ((PG_COLUMN + 4) * PG_MAX_FIELDS + 512)

#define PG_REPLY(req, s) ((req)->reply = (s), (req)->reply_len = sizeof(s) - 1)

/* The verb of a StartupMessage: the profile's name for the connection's start. */
static const char pg_startup[] = "startup";

/* ErrorResponse: severity, severity, SQLSTATE feature_not_supported, message. */
static const char pg_unsupported[] = "E\0\0\0\x44"
                                     "SERROR\0"
                                     "VERROR\0"
                                     "C0A000\0"
                                     "Monly the simple query protocol is served\0"
                                     "\0";
_Static_assert(sizeof pg_unsupported == 1 + 0x44 + 1, "ErrorResponse length");

/* A query of no word: ErrorResponse syntax_error, then ReadyForQuery. */
static const char pg_syntax[] = "E\0\0\0\x3d"
                                "SERROR\0"
                                "VERROR\0"
                                "C42601\0"
                                "Ma statement begins with a keyword\0"
                                "\0"
                                "Z\0\0\0\x05I";
_Static_assert(sizeof pg_syntax == 1 + 0x3d + PG_READY + 1, "ErrorResponse length");

static uint32_t pg_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static long pg_bad(proto_req *req)
{
    PG_REPLY(req, pg_unsupported);
    return PROTO_BAD;
}

static int pg_ident(char c)
{
    return proto_letter((unsigned char)c) || (c >= '0' && c <= '9') || c == '_' || c == '$';
}

/* Skips blanks, empty statements, comments and (where `paren`) opening parentheses. */
static size_t pg_skip(const char *q, size_t len, size_t i, int paren)
{
    while (i < len) {
        char c = q[i];
        if (c == ' ' || (c >= '\t' && c <= '\r') || c == ';' || (paren && c == '(')) {
            i++;
        } else if (c == '-' && i + 1 < len && q[i + 1] == '-') {
            const char *eol = memchr(q + i, '\n', len - i);
            i = eol ? (size_t)(eol - q) + 1 : len;
        } else if (c == '/' && i + 1 < len && q[i + 1] == '*') {
            const char *end = memmem(q + i + 2, len - i - 2, "*/", 2);
            i = end ? (size_t)(end - q) + 2 : len;
        } else {
            break;
        }
    }
    return i;
}

/* The items of a SELECT's list from q[i] on: one more than its commas outside
 * parentheses and quotes, before a FROM or the statement's end. */
static uint32_t pg_select_fields(const char *q, size_t len, size_t i)
{
    uint32_t fields = 1, depth = 0;
    while (i < len && fields < PG_MAX_FIELDS) {
        char c = q[i];
        if (c == '\'' || c == '"') {
            const char *close = memchr(q + i + 1, c, len - i - 1);
            if (!close)
                break;
            i = (size_t)(close - q) + 1;
            continue;
        }
        if (c == '(') {
            depth++;
        } else if (c == ')' && depth) {
            depth--;
        } else if (depth == 0 && c == ',') {
            fields++;
        } else if (depth == 0 && c == ';') {
            break;
        } else if (depth == 0 && pg_ident(c) && !pg_ident(q[i - 1])) {
            size_t start = i;
            while (i < len && pg_ident(q[i]))
                i++;
            if (proto_token_is(q + start, i - start, "from"))
                break;
            continue;
        }
        i++;
    }
    return fields;
}

static void pg_query(const char *q, size_t len, proto_req *req)
{
    size_t i = pg_skip(q, len, 0, 0);
    if (i == len) {
        req->kind = PROTO_REQ_NONE;
        PG_REPLY(req, "I\0\0\0\x04"
                      "Z\0\0\0\x05I"); /* EmptyQueryResponse */
        return;
    }
    i = pg_skip(q, len, i, 1);
    size_t start = i;
    while (i < len && proto_letter((unsigned char)q[i]))
        i++;
    if (i == start) {
        req->kind = PROTO_REQ_NONE;
        PG_REPLY(req, pg_syntax);
        return;
    }
    req->kind = PROTO_REQ_SIZED;
    req->verb = q + start;
    req->verb_len = i - start;
    if (proto_token_is(req->verb, req->verb_len, "select"))
        req->fields = pg_select_fields(q, len, i);
}

/* A message without a type byte: SSLRequest, GSSENCRequest, CancelRequest or StartupMessage. */
static __attribute__((noinline)) long pg_parse_untyped(const char *buf, size_t len, proto_req *req)
{
    if (len < 4)
        return PROTO_MORE;
    uint32_t n = pg_u32(buf);
    if (n < 8 || n > PG_MAX_STARTUP)
        return pg_bad(req);
    if (len < n) {
        req->need = n;
        return PROTO_MORE;
    }
    uint32_t code = pg_u32(buf + 4);
    if (code == PG_SSL || code == PG_GSSENC) {
        req->kind = PROTO_REQ_FIXED;
        PG_REPLY(req, "N");
    } else if (code == PG_CANCEL) {
        req->kind = PROTO_REQ_NONE;
        req->close = 1;
    } else if (code == PG_PROTOCOL3 && buf[n - 1] == 0) {
        req->kind = PROTO_REQ_SIZED;
        req->verb = pg_startup;
        req->verb_len = sizeof pg_startup - 1;
    } else {
        return pg_bad(req);
    }
    return (long)n;
}

static long pg_parse(const char *buf, size_t len, proto_req *req)
{
    memset(req, 0, sizeof *req);
    if (len == 0)
        return PROTO_MORE;
    if (buf[0] == 0)
        return pg_parse_untyped(buf, len, req);
    if (buf[0] != 'Q' && buf[0] != 'X')
        return pg_bad(req);
    if (len < 5)
        return PROTO_MORE;
    uint32_t n = pg_u32(buf + 1);
    if (n < 4 || n > PROTO_MAX_REQUEST)
        return pg_bad(req);
    size_t total = (size_t)n + 1;
    if (len < total) {
        req->need = total;
        return PROTO_MORE;
    }
    if (buf[0] == 'X') { /* Terminate */
        req->kind = PROTO_REQ_NONE;
        req->close = 1;
        return (long)total;
    }
    if (n == 4 || buf[total - 1] != 0)
        return pg_bad(req);
    pg_query(buf + 5, strnlen(buf + 5, n - 5), req);
    return (long)total;
}

/* A message's type and length, for `body` bytes after them. */
static int pg_head(proto_buf *out, char type, size_t body)
{
    uint32_t n = (uint32_t)body + 4;
    char h[5] = { type, (char)(n >> 24), (char)(n >> 16), (char)(n >> 8), (char)n };
    return proto_buf_append(out, h, sizeof h);
}

static int pg_ready(proto_buf *out, char status)
{
    char z[PG_READY] = { 'Z', 0, 0, 0, 5, status };
    return proto_buf_append(out, z, sizeof z);
}

/* The number 1 in `digits` digits, zeros on its left. */
static int pg_one(proto_buf *out, size_t digits)
{
    if (proto_buf_append_fill(out, '0', digits - 1) != TWIN_OK)
        return TWIN_ERR;
    return proto_buf_appends(out, "1");
}

/* CommandComplete and ReadyForQuery. A `counted` tag ends in the row count 1,
 * zero-padded to make them `size` bytes. */
static int pg_complete(proto_buf *out, const char *tag, size_t tag_len, int counted, uint32_t size,
                       char status)
{
    size_t fixed = 5 + tag_len + 1 + PG_READY, digits = 0;
    if (counted) {
        digits = size > fixed ? size - fixed : 1;
        if (5 + tag_len + digits + 1 > PG_MAX_SHORT)
            digits = PG_MAX_SHORT - 5 - tag_len - 1;
    }
    pg_head(out, 'C', tag_len + digits + 1);
    proto_buf_append(out, tag, tag_len);
    if (counted && pg_one(out, digits) != TWIN_OK)
        return TWIN_ERR;
    proto_buf_append(out, "", 1);
    return pg_ready(out, status);
}

/* RowDescription of `cols` text columns (1 for 0), one DataRow, "SELECT 1", ReadyForQuery. */
static int pg_rows(uint32_t cols, uint32_t size, proto_buf *out)
{
    cols = cols < 1 ? 1 : cols > PG_MAX_FIELDS ? PG_MAX_FIELDS : cols;
    /* after a column's one-letter name: its NUL, table oid 0, attnum 0, type oid 25
     * (text), typlen -1, typmod -1, format 0 */
    static const char column[] = "\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0";
    _Static_assert(sizeof column - 1 == PG_COLUMN - 1, "a column's description");
    size_t fixed = 34 + (size_t)(PG_COLUMN + 4) * cols;
    size_t digits = size > fixed ? size - fixed : 1;
    char count[2] = { (char)(cols >> 8), (char)cols };
    char length[4] = { (char)(digits >> 24), (char)(digits >> 16), (char)(digits >> 8), (char)digits };

    pg_head(out, 'T', 2 + (size_t)PG_COLUMN * cols);
    proto_buf_append(out, count, 2);
    for (uint32_t k = 0; k < cols; k++) {
        char name = (char)('a' + k % 26);
        proto_buf_append(out, &name, 1);
        proto_buf_appends(out, column);
    }
    pg_head(out, 'D', 2 + 4 + digits + 4 * ((size_t)cols - 1));
    proto_buf_append(out, count, 2);
    proto_buf_append(out, length, 4);
    if (pg_one(out, digits) != TWIN_OK)
        return TWIN_ERR;
    for (uint32_t k = 1; k < cols; k++)
        proto_buf_appends(out, "\xff\xff\xff\xff"); /* NULL */
    return pg_complete(out, "SELECT 1", 8, 0, size, 'I');
}

/* AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery. The
 * server_version messages take the padding, split where one would pass
 * PG_MAX_SHORT (the last one received holds). */
static int pg_start(uint32_t size, proto_buf *out)
{
    static const char *const params[][2] = {
        { "client_encoding", "UTF8" }, { "DateStyle", "ISO, MDY" },
        { "integer_datetimes", "on" }, { "IntervalStyle", "postgres" },
        { "server_encoding", "UTF8" }, { "standard_conforming_strings", "on" },
        { "TimeZone", "UTC" },
    };
    static const char version[] = "server_version\0"
                                  "15.0";
    static pid_t pid;
    pid_t p = __atomic_load_n(&pid, __ATOMIC_RELAXED);
    if (!p) {
        p = getpid();
        __atomic_store_n(&pid, p, __ATOMIC_RELAXED);
    }
    uint32_t secret = (uint32_t)p * 2654435761u;
    char key[13] = { 'K', 0, 0, 0, 12 };
    for (int i = 0; i < 4; i++) {
        key[5 + i] = (char)((uint32_t)p >> (24 - 8 * i));
        key[9 + i] = (char)(secret >> (24 - 8 * i));
    }
    size_t version_msg = 5 + sizeof version, rest = 9 + sizeof key + PG_READY;

    proto_buf_append(out, "R\0\0\0\x08\0\0\0\0", 9);
    for (size_t i = 0; i < sizeof params / sizeof *params; i++) {
        size_t name = strlen(params[i][0]) + 1, value = strlen(params[i][1]) + 1;
        pg_head(out, 'S', name + value);
        proto_buf_append(out, params[i][0], name);
        proto_buf_append(out, params[i][1], value);
        rest += 5 + name + value;
    }
    size_t left = size > rest + version_msg ? size - rest : version_msg;
    size_t msgs = (left + PG_MAX_SHORT - 1) / PG_MAX_SHORT;
    for (; msgs > 0; msgs--) {
        size_t msg = msgs == 1 ? left : left / msgs, pad = msg - version_msg;
        left -= msg;
        pg_head(out, 'S', msg - 5);
        proto_buf_append(out, version, sizeof version - 1);
        if (pad)
            proto_buf_appends(out, " ");
        if (pad > 1 && proto_buf_append_payload(out, pad - 1) != TWIN_OK)
            return TWIN_ERR;
        proto_buf_append(out, "", 1);
    }
    proto_buf_append(out, key, sizeof key);
    return pg_ready(out, 'I');
}

static int pg_respond(const proto_req *req, int named, uint32_t size, proto_buf *out)
{
    const char *v = req->verb;
    size_t n = req->verb_len;
    (void)named; /* an op not profiled is served its size alike */
    if (req->kind != PROTO_REQ_SIZED)
        return proto_buf_append(out, req->reply, req->reply_len);
    /* the sampled bytes, and room for what a reply below its minimum adds */
    if (proto_buf_reserve(out, (size_t)size + PG_RESERVE) != TWIN_OK)
        return TWIN_ERR;
    if (v == pg_startup)
        return pg_start(size, out);
    if (proto_token_is(v, n, "select") || proto_token_is(v, n, "show") || proto_token_is(v, n, "values") ||
        proto_token_is(v, n, "table") || proto_token_is(v, n, "with") || proto_token_is(v, n, "fetch"))
        return pg_rows(req->fields, size, out);
    if (proto_token_is(v, n, "insert"))
        return pg_complete(out, "INSERT 0 ", 9, 1, size, 'I');
    if (proto_token_is(v, n, "update"))
        return pg_complete(out, "UPDATE ", 7, 1, size, 'I');
    if (proto_token_is(v, n, "delete"))
        return pg_complete(out, "DELETE ", 7, 1, size, 'I');
    if (proto_token_is(v, n, "begin") || proto_token_is(v, n, "start"))
        return pg_complete(out, "BEGIN", 5, 0, size, 'T');
    if (proto_token_is(v, n, "end") || proto_token_is(v, n, "commit"))
        return pg_complete(out, "COMMIT", 6, 0, size, 'I');
    if (proto_token_is(v, n, "rollback") || proto_token_is(v, n, "abort"))
        return pg_complete(out, "ROLLBACK", 8, 0, size, 'I');
    char tag[PG_MAX_TAG];
    n = n < sizeof tag ? n : sizeof tag;
    for (size_t i = 0; i < n; i++)
        tag[i] = (char)(v[i] & ~0x20); /* the verb is letters only */
    return pg_complete(out, tag, n, 0, size, 'I');
}

const proto_ops proto_postgres = {
    .name = "postgres",
    .parse = pg_parse,
    .respond = pg_respond,
};
