#!/usr/bin/env bash
# run.sh -- end-to-end tests of the clone runtime, on its example clones:
#   example_clone  memcached  WORKER_POOL (4 workers)  read until EAGAIN, sendmsg
#   example_resp   RESP       EVENT_LOOP               recvfrom once, write
#   example_http   HTTP/1.1   PREFORK (2 processes)    recvmsg until EAGAIN, writev
#   example_pg     PostgreSQL EVENT_LOOP               recvfrom until EAGAIN, sendto;
#                  also driven by pgbench and psql
#   example_blocking memcached, blocking reads, sendmsg: THREAD_PER_CONN,
#                  PROCESS_POOL (3 processes, 2 with --workers 2), PROCESS_PER_CONN;
#                  PROCESS_PER_CONN receiving first with recvfrom, waiting in epoll,
#                  sendto, with 2 background processes (PostgreSQL's shape)
# For each: protocol checks (client.py), thread and process counts, system
# calls per request under `strace -f -c`, SIGTERM (exit 0, no files, no
# children), a second instance on the same port (exit 2, one line). Then one
# run of each under valgrind memcheck, and the parsers under sanitizers.
# Exits non-zero on the first failure.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RT=$(dirname "$HERE")
BUILD=$RT/build
export PYTHONDONTWRITEBYTECODE=1
CLIENT=(python3 "$HERE/client.py")
STRACE_REQUESTS=300

make -C "$RT" -s >/dev/null || { echo "FAIL: build" >&2; exit 1; }

TMP=$(mktemp -d /tmp/twin-rt-test.XXXXXX)
STARTED=() # every pid this script started, killed on exit if still there
cleanup() {
    local p
    for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

die() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

threads() { ls "/proc/$1/task" | wc -l; }

wait_file() { # wait_file PATH SECONDS
    local deadline=$((SECONDS + $2))
    until [[ -e $1 ]]; do
        ((SECONDS < deadline)) || die "timed out waiting for $1"
        sleep 0.02
    done
}

# start_clone NAME PORT [flags...]: sets CLONE_PID; ${WRAP[@]} runs it (valgrind)
WRAP=()
START_TIMEOUT=10
start_clone() {
    local name=$1 port=$2
    shift 2
    "${WRAP[@]}" "$BUILD/$name" --port "$port" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CLONE_PID=$!
    STARTED+=("$CLONE_PID")
    local deadline=$((SECONDS + START_TIMEOUT))
    until grep -qsx "listening on 127.0.0.1:$port" "$TMP/$name.out"; do
        kill -0 "$CLONE_PID" 2>/dev/null || die "$name exited before listening: $(cat "$TMP/$name.err")"
        ((SECONDS < deadline)) || die "$name: no 'listening on' line in ${START_TIMEOUT}s"
        sleep 0.05
    done
}

# stop_clone NAME PID WORKDIR [SIGNAL]: SIGTERM (or SIGINT) must end it with
# 0, its children and its work folder gone, nothing but one line on stdout.
stop_clone() {
    local name=$1 pid=$2 dir=$3 sig=${4:-TERM} kids rc=0 k
    kids=$("${CLIENT[@]}" children "$pid")
    STARTED+=($kids)
    kill -"$sig" "$pid"
    local deadline=$((SECONDS + ${STOP_TIMEOUT:-20}))
    while [[ -e /proc/$pid && $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]; do
        ((SECONDS < deadline)) || die "$name: still running ${STOP_TIMEOUT:-20}s after SIG$sig"
        sleep 0.05
    done
    wait "$pid" || rc=$?
    [[ $rc == 0 ]] || die "$name: exit status $rc after SIG$sig: $(tail -5 "$TMP/$name.err")"
    for k in $kids; do
        [[ -e /proc/$k ]] && die "$name: child process $k still there after exit"
    done
    [[ ! -e $dir ]] || die "$name: left its work folder $dir: $(ls -A "$dir")"
    [[ $(wc -l <"$TMP/$name.out") == 1 ]] || die "$name: stdout has more than the listening line"
    ok "$name: SIG$sig -> exit 0, work folder removed${kids:+, worker processes gone}"
}

check_port_in_use() {
    local name=$1 port=$2 rc=0
    "$BUILD/$name" --port "$port" --dir "$TMP/second" >"$TMP/second.out" 2>"$TMP/second.err" || rc=$?
    [[ $rc == 2 ]] || die "$name: second instance on port $port exited $rc, want 2"
    [[ $(wc -l <"$TMP/second.err") == 1 ]] || die "$name: second instance printed: $(cat "$TMP/second.err")"
    grep -qE "^clone: port $port is in use: .*; pick another port\$" "$TMP/second.err" ||
        die "$name: port-in-use line: $(cat "$TMP/second.err")"
    [[ ! -s $TMP/second.out && ! -e $TMP/second ]] || die "$name: second instance left output or files"
    ok "$name: port in use -> exit 2: $(cat "$TMP/second.err")"
}

# measure NAME PROTO VERBS PORT EXPECT PID...: serial requests on one
# connection while strace counts the calls of the serving processes
# (kids:PID: the children of PID but those in $NOT_KIDS). $SERIAL_FLAGS go
# to the client (--pause S, --depth D).
measure() {
    local name=$1 proto=$2 verbs=$3 port=$4 expect=$5
    shift 5
    local gate=$TMP/$name.gate args=() p q want=0
    "${CLIENT[@]}" serial --proto "$proto" --port "$port" --count "$STRACE_REQUESTS" \
        --verbs "$verbs" --gate "$gate" ${SERIAL_FLAGS:-} &
    local client=$!
    STARTED+=("$client")
    wait_file "$gate.connected" 10
    sleep 0.3 # the connection reaches the thread that serves it
    for p in "$@"; do
        [[ $p == kids:* ]] && p=$("${CLIENT[@]}" children "${p#kids:}") # started by the connection
        for q in $p; do
            [[ " ${NOT_KIDS:-} " == *" $q "* ]] && continue
            args+=(-p "$q")
            want=$((want + 1))
        done
    done
    strace -f -c -o "$TMP/$name.strace" "${args[@]}" 2>"$TMP/$name.strace.err" &
    local tracer=$!
    STARTED+=("$tracer")
    local deadline=$((SECONDS + 10))
    until (($(grep -c attached "$TMP/$name.strace.err") >= want)); do
        ((SECONDS < deadline)) || die "$name: strace did not attach: $(cat "$TMP/$name.strace.err")"
        sleep 0.05
    done
    sleep 0.3
    touch "$gate.go"
    wait "$client" || die "$name: serial client failed"
    sleep 0.3
    kill -INT "$tracer" 2>/dev/null # (gone already if what it traced has exited)
    wait "$tracer"
    echo "     $name: system calls per request ($STRACE_REQUESTS requests, verbs $verbs):"
    "${CLIENT[@]}" counts "$TMP/$name.strace" --count "$STRACE_REQUESTS" $expect ||
        die "$name: system calls per request"
    ok "$name: system calls per request as configured"
}

# --- the parsers on damaged input, under sanitizers -------------------------
if make -C "$RT" -s build/proto_fuzz >/dev/null 2>&1; then
    "$BUILD/proto_fuzz" 100000 >/dev/null || die "proto_fuzz"
    ok "parsers: 100000 split and damaged inputs under ASan/UBSan"
else
    echo "skip proto_fuzz (no sanitizer runtime)"
fi

# --- RESP sized replies of ops other than GET ------------------------------------
# INCR, LPUSH and HSET answer integers of 4 and 5 bytes (:1, :10), which no bulk
# string but the nil fits: a named op answers an integer there, without a leading
# zero (hiredis refuses one), and a bulk or simple string of exactly the size above.
cat >"$TMP/resp_sized.c" <<'EOF_C'
#include <stdio.h>
#include <string.h>

#include "proto.h"

static int reply(const char *cmd, int named, uint32_t size, proto_buf *out)
{
    proto_req req;
    proto_buf_clear(out);
    if (proto_resp.parse(cmd, strlen(cmd), &req) != (long)strlen(cmd) ||
        proto_resp.respond(&req, named, size, out) != TWIN_OK)
        return -1;
    return 0;
}

int main(void)
{
    static const char incr[] = "*2\r\n$4\r\nINCR\r\n$3\r\nc:k\r\n", get[] = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    static const char *const small[] = { ":1\r\n", ":1\r\n", ":1\r\n", ":1\r\n", ":1\r\n", ":10\r\n" };
    proto_buf out = { 0 };
    proto_init();
    for (uint32_t size = 0; size < 400; size++) {
        if (reply(incr, 1, size, &out) < 0)
            return printf("INCR of %u bytes: no reply\n", size), 1;
        if (size < 6 ? out.len != strlen(small[size]) || memcmp(out.data, small[size], out.len) != 0
                     : out.wire != size || (out.data[0] != '$' && out.data[0] != '+'))
            return printf("INCR of %u bytes: %zu bytes '%.*s'\n", size, out.wire, (int)out.len, out.data), 1;
    }
    if (reply(get, 1, 4, &out) < 0 || out.len != 5 || memcmp(out.data, "$-1\r\n", 5) != 0)
        return printf("GET of 4 bytes: '%.*s'\n", (int)out.len, out.data), 1;
    if (reply(incr, 0, 4, &out) < 0 || memcmp(out.data, "-ERR unknown command", 20) != 0)
        return printf("unnamed INCR: '%.*s'\n", (int)out.len, out.data), 1;
    proto_buf_free(&out);
    return 0;
}
EOF_C
cc -std=gnu11 -Wall -Wextra -Werror -I"$RT" "$TMP/resp_sized.c" -L"$BUILD" -ltwinrt -pthread -lm -o "$TMP/resp_sized" ||
    die "resp_sized: build"
"$TMP/resp_sized" || die "resp_sized: sized replies of ops other than GET"
ok "resp: sized replies of named ops other than GET: integers :1, :10 below 6 bytes, exact sizes above"

# --- PostgreSQL reply sizes ------------------------------------------------------------
# Each verb class against sampled sizes: rows, row counts and the start-up exactly the size
# from their minimum up (a row count within libpq's 30000-byte message), other tags their
# own size; every reply whole messages ending in ReadyForQuery, the padded numbers 1.
cat >"$TMP/pg_sized.c" <<'EOF_C'
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const struct {
    const char *sql;
    uint32_t min;
    char kind; /* r: rows, n: a row count, t: a tag */
    char status;
} cases[] = {
    { "SELECT abalance FROM pgbench_accounts WHERE aid = 1;", 59, 'r', 'I' },
    { "select count(*) from pgbench_branches", 59, 'r', 'I' },
    { "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from c join n on (n.oid = c.ns) group by 1, 2",
      107, 'r', 'I' },
    { "  -- a, b\n (SELECT 'a,b', \"c,d\", f(1, 2), x FROM t)", 131, 'r', 'I' },
    { "show work_mem", 59, 'r', 'I' },
    { "insert into t values (1, 2)", 22, 'n', 'I' },
    { "UPDATE t SET a = 1, b = 2", 20, 'n', 'I' },
    { "delete from t", 20, 'n', 'I' },
    { "BEGIN;", 17, 't', 'T' },
    { "start transaction", 17, 't', 'T' },
    { "END;", 18, 't', 'I' },
    { "commit", 18, 't', 'I' },
    { "rollback", 20, 't', 'I' },
    { "abort", 20, 't', 'I' },
    { "vacuum t", 18, 't', 'I' },
    { "set x = 1", 15, 't', 'I' },
    { "startup", 237, 's', 'I' },
};

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Walks the reply; what is wrong with it, or NULL. */
static const char *check(const char *r, size_t n, char kind, char status)
{
    size_t at = 0, last = 0;
    int one = kind == 't' || kind == 's';
    while (at + 5 <= n) {
        const char *m = r + at, *body = m + 5;
        uint32_t len = be32(m + 1);
        if (len < 4 || at + 1 + len > n || (len > 30000 && *m != 'T' && *m != 'D'))
            return "a message of a bad length";
        if (*m == 'D' && kind == 'r') {
            uint32_t vl = be32(body + 2);
            one = vl >= 1 && len - 4 >= 6 + vl && strspn(body + 6, "0") == vl - 1 && body[6 + vl - 1] == '1';
        } else if (*m == 'C' && kind == 'n') {
            const char *end = memchr(body, 0, len - 4), *sp = memrchr(body, ' ', (size_t)(end - body));
            one = sp && strspn(sp + 1, "0") == (size_t)(end - sp - 2) && end[-1] == '1';
        } else if (*m == 'S' && kind == 's' && strcmp(body, "server_version") == 0) {
            one = one && strncmp(body + 15, "15.0", 4) == 0 && (body[19] == 0 || body[19] == ' ');
        }
        last = at;
        at += 1 + len;
    }
    if (at != n || r[last] != 'Z' || n - last != 6 || r[n - 1] != status)
        return "not ended by ReadyForQuery";
    return one ? NULL : "no padded 1 (or server_version 15.0)";
}

int main(void)
{
    static const char startup[] = "\0\0\0\x42\0\x03\0\0user\0postgres\0database\0postgres\0"
                                  "application_name\0pgbench\0";
    static const uint32_t big[] = { 29990, 29999, 30000, 30001, 30006, 30007, 60013, 100000 };
    char msg[256];
    proto_buf out = { 0 };
    proto_init();
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t ql = strlen(cases[c].sql) + 1, ml = sizeof startup;
        if (cases[c].kind != 's') {
            memcpy(msg, "Q\0\0\0", 4);
            msg[4] = (char)(ql + 4);
            memcpy(msg + 5, cases[c].sql, ql);
            ml = ql + 5;
        } else {
            memcpy(msg, startup, ml);
        }
        proto_req req;
        if (proto_postgres.parse(msg, ml, &req) != (long)ml || req.kind != PROTO_REQ_SIZED)
            return printf("%s: not parsed as one sized request\n", cases[c].sql), 1;
        for (uint32_t i = 0; i < 3000 + sizeof big / sizeof *big; i++) {
            uint32_t size = i < 3000 ? i : big[i - 3000], want = cases[c].min;
            if (cases[c].kind != 't' && size > want)
                want = size;
            if (cases[c].kind == 'n' && want > 30006)
                want = 30006;
            proto_buf_clear(&out);
            if (proto_postgres.respond(&req, (int)(i & 1), size, &out) != TWIN_OK)
                return printf("%s: no reply of %u bytes\n", cases[c].sql, size), 1;
            const char *bad = check(out.data, out.len, cases[c].kind, cases[c].status);
            if (out.wire != want || bad)
                return printf("%s: reply for %u bytes of %zu, want %u: %s\n", cases[c].sql, size, out.wire, want,
                              bad ? bad : "size"),
                       1;
        }
    }
    proto_buf_free(&out);
    return 0;
}
EOF_C
cc -std=gnu11 -Wall -Wextra -Werror -I"$RT" "$TMP/pg_sized.c" -L"$BUILD" -ltwinrt -pthread -lm -o "$TMP/pg_sized" ||
    die "pg_sized: build"
"$TMP/pg_sized" || die "pg_sized: reply sizes"
ok "postgres: reply sizes: rows from 59 bytes (107 with 3 columns), INSERT 0 N from 22, UPDATE/DELETE N from 20, start-up from 237, exact above; BEGIN 17, COMMIT 18, ROLLBACK 20"

# --- memcached, worker pool ------------------------------------------------
name=example_clone
port=$(free_port)
dir=$TMP/work-$name
start_clone $name "$port" --dir "$dir"
[[ -f $dir/data0 && $(stat -c %s "$dir/data0") == 1048576 && -f $dir/log0 ]] ||
    die "$name: data0 (1 MiB) and log0 not in --dir"
[[ $(threads "$CLONE_PID") == 7 ]] || die "$name: $(threads "$CLONE_PID") threads, want 1 + 4 workers + 2 background"
ok "$name: 7 threads (acceptor + 4 workers + 2 background)"
"${CLIENT[@]}" check --proto memcached --port "$port" --sizes get=1030,100 --sizes set=8 ||
    die "$name: protocol checks"
ok "$name: memcached replies, pipelining, split requests, malformed input"
check_port_in_use $name "$port"
# per request, alternating get and set: get reads 2x (data, EAGAIN), sends
# once, waits once, pread64 1, clock_gettime 0.5; set: write 1 (the log),
# fdatasync 0.25, futex 2.
measure $name memcached get,set "$port" \
    "read=2 sendmsg=1 epoll_wait=1 pread64=0.5 clock_gettime=0.25 write=0.5 fdatasync=0.125 futex=1 epoll_ctl=0 accept4=0 recvfrom=0" \
    "$CLONE_PID"
[[ $(threads "$CLONE_PID") == 7 ]] || die "$name: thread count changed under load"
stop_clone $name "$CLONE_PID" "$dir"

# --- RESP, event loop, default work folder -----------------------------------
name=example_resp
port=$(free_port)
start_clone $name "$port"
dir=$(for f in /proc/"$CLONE_PID"/fd/*; do readlink "$f"; done | grep -m1 '^/tmp/twin-clone\.' | xargs -r dirname)
[[ -n $dir && -f $dir/data0 ]] || die "$name: no work folder under /tmp"
[[ $(threads "$CLONE_PID") == 3 ]] || die "$name: $(threads "$CLONE_PID") threads, want 1 + 2 background"
ok "$name: 3 threads (event loop + 2 background), work folder $dir"
"${CLIENT[@]}" check --proto resp --port "$port" --sizes GET=5,16,107,4000 --sizes SET=5 ||
    die "$name: protocol checks"
ok "$name: RESP replies, pipelining, split requests, malformed input"
check_port_in_use $name "$port"
# GET: read 1 (+1 lseek per 128 reads, when the 1 MiB data file wraps),
# lseek 0.5, getpid 0.25; SET: epoll_ctl 1, mmap 0.5 anonymous and 0.5 of the
# data file, munmap 1, pwrite64 1, fsync 0.1, and once a turn a write of the
# log and an fdatasync (a turn of one request here: one each a SET)
minflt() { awk '{print $10}' /proc/"$1"/stat; }
f0=$(minflt "$CLONE_PID")
measure $name resp GET,SET "$port" \
    "recvfrom=1 write=1.5 epoll_wait=1 read=0.5 lseek=0.254 getpid=0.125 epoll_ctl=0.5 mmap=0.5 munmap=0.5 pwrite64=0.5 fsync=0.05 fdatasync=0.5 sendto=0" \
    "$CLONE_PID"
# A map of the data file is read: a new map's first read faults its pages in.
faults=$(($(minflt "$CLONE_PID") - f0)) maps=$((STRACE_REQUESTS / 4))
((faults >= maps)) || die "$name: $faults page faults for $maps maps of the data file, want one a map at least"
ok "$name: $faults page faults for $maps maps of the data file (each read)"
# Once a turn: SETs sent at once on 8 connections, several served in a turn, make one write
# of the log (300 bytes a SET) and one fdatasync for the turn, before any of its replies.
gate=$TMP/$name.burst
"${CLIENT[@]}" burst --proto resp --port "$port" --conns 8 --count 40 --verbs SET --gate "$gate" &
client=$!
STARTED+=("$client")
wait_file "$gate.connected" 10
sleep 0.3
strace -f -e trace=epoll_wait,fdatasync,write -o "$TMP/$name.turn.strace" -p "$CLONE_PID" 2>"$TMP/$name.turn.err" &
tracer=$!
STARTED+=("$tracer")
deadline=$((SECONDS + 10))
until grep -q attached "$TMP/$name.turn.err"; do
    ((SECONDS < deadline)) || die "$name: strace did not attach: $(cat "$TMP/$name.turn.err")"
    sleep 0.05
done
sleep 0.3
touch "$gate.go"
wait "$client" || die "$name: burst client failed"
sleep 0.3
kill -INT "$tracer" 2>/dev/null
wait "$tracer"
# per turn (from one epoll_wait to the next): replies (writes of 5 bytes), the log's write
# and its size, syncs; bad: a reply before the turn's sync, a second sync, a log write of
# other than 300 bytes a reply
read -r turns several syncs bad < <(awk '
    function end() { if (replies > 1) several++; if (replies && logged != 300 * replies) bad++ }
    { call = $2; sub(/\(.*/, "", call); ret = $NF }
    call == "epoll_wait" { end(); replies = 0; logged = 0; synced = 0; turns++ }
    call == "fdatasync" { if (synced) bad++; synced = 1; syncs++ }
    call == "write" && ret == 5 { if (!synced) bad++; replies++ }
    call == "write" && ret != 5 { if (logged || synced) bad++; logged = ret }
    END { end(); printf "%d %d %d %d\n", turns, several, syncs, bad }' "$TMP/$name.turn.strace")
((bad == 0 && several > 0 && syncs < 320)) ||
    die "$name: once-a-turn steps: $syncs fdatasync for 320 SETs in $turns turns ($several of several SETs), $bad out of order or twice"
ok "$name: once a turn: $syncs fdatasync for 320 SETs ($several turns of several), each before its turn's replies"
stop_clone $name "$CLONE_PID" "$dir" INT

# --- HTTP, prefork -------------------------------------------------------------
name=example_http
port=$(free_port)
dir=$TMP/work-$name
start_clone $name "$port" --dir "$dir" --key-at 5
[[ $(threads "$CLONE_PID") == 4 ]] || die "$name: main process has $(threads "$CLONE_PID") threads, want 1 + 3 background"
kids=$("${CLIENT[@]}" children "$CLONE_PID")
STARTED+=($kids)
[[ $(wc -w <<<"$kids") == 2 ]] || die "$name: $(wc -w <<<"$kids") worker processes, want 2"
for k in $kids; do
    [[ $(threads "$k") == 1 ]] || die "$name: worker process $k has $(threads "$k") threads, want 1"
done
ok "$name: main process 4 threads (1 + 3 background), 2 worker processes of 1 thread"
# The select thread spends 20 ms of CPU time a second awake (schedstat over 2 s, idle).
cpu_ns() { local t s=0; for t in /proc/"$1"/task/*; do s=$((s + $(cut -d' ' -f1 "$t/schedstat"))); done; echo $s; }
sleep 0.5
c0=$(cpu_ns "$CLONE_PID")
sleep 2
c1=$(cpu_ns "$CLONE_PID")
ms=$(((c1 - c0) / 2000000))
((ms >= 16 && ms <= 26)) || die "$name: main process spent $ms ms of CPU a second idle, want about 20 (the select thread's)"
ok "$name: main process idle at $ms ms of CPU a second (the select thread's 20)"
"${CLIENT[@]}" check --proto http --port "$port" --sizes GET=217,250,1000,10000,100000 ||
    die "$name: protocol checks"
ok "$name: HTTP replies, pipelining, split requests, malformed input"
"${CLIENT[@]}" keyed --port "$port" /file1.html=1000 /file2.html=100000 ||
    die "$name: replies by key number"
ok "$name: keys 1 and 2 answered with their sizes (--key-at 5), every time"
check_port_in_use $name "$port"
measure $name http GET "$port" \
    "recvmsg=2 writev=1 epoll_wait=1 openat=1 fstat=1 pread64=1 close=1 newfstatat=0.5 statx=0.5 setsockopt=0.2 getsockopt=0.2 ioctl=0.2 fcntl=0.2 madvise=0.1 getppid=3 epoll_ctl=0 accept4=0" \
    $kids
# Its close is made after the reply: in each process, the call before every close is the send.
gate=$TMP/$name.order
"${CLIENT[@]}" serial --proto http --port "$port" --count 20 --verbs GET --gate "$gate" &
client=$!
STARTED+=("$client")
wait_file "$gate.connected" 10
sleep 0.3
args=()
for k in $kids; do args+=(-p "$k"); done
strace -f -e trace=recvmsg,openat,writev,close -o "$TMP/$name.order.strace" "${args[@]}" 2>"$TMP/$name.order.err" &
tracer=$!
STARTED+=("$tracer")
until (($(grep -c attached "$TMP/$name.order.err") >= $(wc -w <<<"$kids"))); do sleep 0.05; done
sleep 0.3
touch "$gate.go"
wait "$client" || die "$name: serial client failed"
sleep 0.3
kill -INT "$tracer" 2>/dev/null
wait "$tracer"
# (before the send, a close would follow the request's openat; the connections' own closes
# follow their last receive)
after=$(awk '{ call = $2; sub(/\(.*/, "", call) } call == "close" { if (last[$1] == "writev") ok++; if (last[$1] == "openat") bad++ } call != "close" { last[$1] = call } END { printf "%d %d", ok, bad }' "$TMP/$name.order.strace")
read -r ok bad <<<"$after"
((ok >= 20 && bad == 0)) || die "$name: $ok closes right after the reply's send, $bad before it"
ok "$name: the request's close made after the reply's send ($ok times, never before)"
stop_clone $name "$CLONE_PID" "$dir"

# --- PostgreSQL, event loop: pgbench and psql against the clone -----------------------
name=example_pg
command -v pgbench >/dev/null && command -v psql >/dev/null ||
    die "$name: pgbench and psql are needed to test the PostgreSQL protocol (apt-get install postgresql-client)"
PG_SIZES=(--sizes select=70,72 --sizes startup=417 --sizes begin=17 --sizes update=20 --sizes insert=22 --sizes end=18)
port=$(free_port)
dir=$TMP/work-$name
start_clone $name "$port" --dir "$dir"
[[ $(threads "$CLONE_PID") == 2 ]] || die "$name: $(threads "$CLONE_PID") threads, want 1 + 1 background"
ok "$name: 2 threads (event loop + 1 background)"
"${CLIENT[@]}" check --proto pg --port "$port" "${PG_SIZES[@]}" || die "$name: protocol checks"
ok "$name: start-up, row sets, tags, pipelining, split messages, the extended protocol refused"
# TPC-B-like (BEGIN, 3 UPDATEs, SELECT, INSERT, END) and select-only, 2 clients of 200 each.
for script in tpcb-like select-only; do
    flags=()
    [[ $script == select-only ]] && flags=(-S)
    PGSSLMODE=prefer timeout 120 pgbench -h 127.0.0.1 -p "$port" -U postgres -n -M simple -c 2 -j 1 -t 200 "${flags[@]}" postgres \
        >"$TMP/pgbench.out" 2>&1 || die "$name: pgbench $script exited $?: $(tail -5 "$TMP/pgbench.out")"
    grep -qx "number of transactions actually processed: 400/400" "$TMP/pgbench.out" &&
        grep -q "^number of failed transactions: 0 " "$TMP/pgbench.out" ||
        die "$name: pgbench $script: $(grep -E '^number of (transactions|failed)' "$TMP/pgbench.out")"
    ok "$name: pgbench $script: 400/400 transactions, 0 failed, $(grep -o '^tps = [0-9]*' "$TMP/pgbench.out")"
done
out=$(PGSSLMODE=prefer timeout 30 psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc 'select 1' 2>&1) ||
    die "$name: psql exited $?: $out"
[[ $out =~ ^0*1$ ]] || die "$name: psql printed '$out', want a zero-padded 1"
ok "$name: psql -c 'select 1' printed $out"
check_port_in_use $name "$port"
# per request, in turn SELECT (a page read), UPDATE (a page written), END (a flush):
# recvfrom twice (the query, EAGAIN), sendto once, one wait.
measure $name pg select,update,end "$port" \
    "recvfrom=2 sendto=1 epoll_wait=1 pread64=0.333 pwrite64=0.333 fdatasync=0.333 write=0 read=0 epoll_ctl=0 accept4=0" \
    "$CLONE_PID"
stop_clone $name "$CLONE_PID" "$dir"

# --- blocking servers: a thread per connection, a process pool, a process per connection ---
# hold_conns PORT N: N connections, each answered once, held open until release_conns.
hold_conns() {
    HOLD_GATE=$TMP/hold.$1.$2
    "${CLIENT[@]}" hold --proto memcached --port "$1" --conns "$2" --verbs get --gate "$HOLD_GATE" &
    HOLD_PID=$!
    STARTED+=("$HOLD_PID")
    wait_file "$HOLD_GATE.ready" 10
    sleep 0.2 # the last connection's thread or process is running
}
release_conns() {
    touch "$HOLD_GATE.go"
    wait "$HOLD_PID" || die "hold client failed"
}
# per request, alternating get and set: one blocking read (no EAGAIN read, no
# wait), one sendmsg; get pread64 1, openat 2, close 1 (an open for each close, the other
# fails; a thread or process that serves one connection also closes the 16 it holds at its
# end); set write 1, fdatasync 0.5.
BLOCKING_CALLS="read=1 sendmsg=1 pread64=0.5 openat=1 write=0.5 fdatasync=0.25 epoll_wait=0 poll=0 accept4=0"
name=example_blocking

export TWIN_TEST_NET=3 # a thread per connection
port=$(free_port)
dir=$TMP/work-tpc
start_clone $name "$port" --dir "$dir"
[[ $(stat -c %s "$dir/log0") == 0 ]] || die "thread per connection: the log is not empty at the start, and nothing writes it in place"
[[ $(threads "$CLONE_PID") == 2 ]] || die "thread per connection: $(threads "$CLONE_PID") threads idle, want 1 + 1 background"
hold_conns "$port" 5
[[ $(threads "$CLONE_PID") == 7 ]] || die "thread per connection: $(threads "$CLONE_PID") threads on 5 connections, want 1 + 1 background + 5"
release_conns
sleep 0.3
[[ $(threads "$CLONE_PID") == 2 ]] || die "thread per connection: $(threads "$CLONE_PID") threads after the connections closed, want 2"
ok "thread per connection: 2 threads idle, 7 on 5 connections, 2 again once they close"
"${CLIENT[@]}" check --proto memcached --port "$port" --sizes get=1030,100 --sizes set=8 ||
    die "thread per connection: protocol checks"
ok "thread per connection: memcached replies, pipelining, split requests, malformed input"
measure tpc memcached get,set "$port" "$BLOCKING_CALLS" "$CLONE_PID"
hold_conns "$port" 3 # open connections must not hold the stop up
stop_clone $name "$CLONE_PID" "$dir"
release_conns

export TWIN_TEST_NET=4 # a pool of processes
for workers in 3 2; do
    port=$(free_port)
    dir=$TMP/work-pool$workers
    flags=()
    [[ $workers == 3 ]] || flags=(--workers "$workers")
    start_clone $name "$port" --dir "$dir" "${flags[@]}"
    kids=$("${CLIENT[@]}" children "$CLONE_PID")
    STARTED+=($kids)
    [[ $(wc -w <<<"$kids") == "$workers" ]] || die "process pool: $(wc -w <<<"$kids") processes, want $workers ${flags[*]}"
    [[ $(threads "$CLONE_PID") == 2 ]] || die "process pool: main process has $(threads "$CLONE_PID") threads, want 1 + 1 background"
    hold_conns "$port" "$workers"
    [[ $("${CLIENT[@]}" children "$CLONE_PID") == "$kids" ]] || die "process pool: processes changed under $workers connections"
    release_conns
    ok "process pool: $workers processes of 1 thread${flags:+ (${flags[*]})}, the same under $workers connections"
    [[ $workers == 2 ]] || stop_clone $name "$CLONE_PID" "$dir"
done
"${CLIENT[@]}" check --proto memcached --port "$port" --sizes get=1030,100 --sizes set=8 ||
    die "process pool: protocol checks"
ok "process pool: memcached replies, pipelining, split requests, malformed input"
measure pool memcached get,set "$port" "$BLOCKING_CALLS close=0.5" $kids
stop_clone $name "$CLONE_PID" "$dir"

# A pool that keeps one process idle (2 at the start, up to 8), whose connections wait in poll
# and receive until EAGAIN, as Apache's prefork does between keep-alive requests.
export TWIN_TEST_SPARE=1 TWIN_TEST_POLL=1
port=$(free_port)
dir=$TMP/work-spare
start_clone $name "$port" --dir "$dir" --workers 2
[[ $(wc -w <<<"$("${CLIENT[@]}" children "$CLONE_PID")") == 2 ]] || die "growing pool: not 2 processes at the start"
hold_conns "$port" 4
# once a second: 1 forked (3 busy, 1 waiting), then 2 (4 busy, 1 idle), then none
for _ in $(seq 50); do
    (($(wc -w <<<"$("${CLIENT[@]}" children "$CLONE_PID")") >= 5)) && break
    sleep 0.1
done
sleep 1.2
kids=$("${CLIENT[@]}" children "$CLONE_PID")
STARTED+=($kids)
[[ $(wc -w <<<"$kids") == 5 ]] || die "growing pool: $(wc -w <<<"$kids") processes on 4 connections, want 4 busy + 1 idle"
release_conns
ok "growing pool: 2 processes idle, 5 on 4 connections (1 then 2 forked a second, one kept idle)"
"${CLIENT[@]}" check --proto memcached --port "$port" --sizes get=1030,100 --sizes set=8 ||
    die "growing pool: protocol checks"
ok "growing pool: memcached replies, pipelining, split requests, malformed input"
measure spare memcached get,set "$port" \
    "poll=1 read=2 sendmsg=1 pread64=0.5 openat=1 close=0.5 write=0.5 fdatasync=0.25 epoll_wait=0 accept4=0" $kids
stop_clone $name "$CLONE_PID" "$dir"
unset TWIN_TEST_SPARE TWIN_TEST_POLL

export TWIN_TEST_NET=5 # a process per connection
port=$(free_port)
dir=$TMP/work-ppc
start_clone $name "$port" --dir "$dir"
[[ -z $("${CLIENT[@]}" children "$CLONE_PID") ]] || die "process per connection: worker processes before any connection"
hold_conns "$port" 4
kids=$("${CLIENT[@]}" children "$CLONE_PID")
STARTED+=($kids)
[[ $(wc -w <<<"$kids") == 4 ]] || die "process per connection: $(wc -w <<<"$kids") processes on 4 connections, want 4"
release_conns
sleep 0.3
[[ -z $("${CLIENT[@]}" children "$CLONE_PID") ]] || die "process per connection: processes left once the connections closed"
ok "process per connection: none idle, 4 on 4 connections, none once they close"
"${CLIENT[@]}" check --proto memcached --port "$port" --sizes get=1030,100 --sizes set=8 ||
    die "process per connection: protocol checks"
ok "process per connection: memcached replies, pipelining, split requests, malformed input"
measure ppc memcached get,set "$port" "$BLOCKING_CALLS" "kids:$CLONE_PID"
hold_conns "$port" 2
stop_clone $name "$CLONE_PID" "$dir"
release_conns

# A process per connection that receives first and waits in an epoll set of the connection's
# own only when a receive finds nothing, beside a background thread and 2 background
# processes (PostgreSQL's backends, checkpointer and WAL writer): one sleeps in epoll_wait
# every 200 ms, the other in nanosleep every 100 ms and once more a request served, wherever
# it was served.
export TWIN_TEST_POLL=epoll TWIN_TEST_BGPROC=2
what="process per connection, epoll"
port=$(free_port)
dir=$TMP/work-ppc-epoll
start_clone $name "$port" --dir "$dir"
# The WAL writer writes in place: the log is made whole (16 MiB) before the clone serves.
[[ $(stat -c %s "$dir/log0") == $((16 << 20)) ]] || die "$what: a log of $(stat -c %s "$dir/log0") bytes at the start, want 16 MiB"
bgs=$("${CLIENT[@]}" children "$CLONE_PID")
STARTED+=($bgs)
[[ $(wc -w <<<"$bgs") == 2 ]] || die "$what: $(wc -w <<<"$bgs") processes before any connection, want 2 background"
[[ $(threads "$CLONE_PID") == 2 ]] || die "$what: main process has $(threads "$CLONE_PID") threads, want 1 + 1 background"
hold_conns "$port" 4
kids=$("${CLIENT[@]}" children "$CLONE_PID")
STARTED+=($kids)
[[ $(wc -w <<<"$kids") == 6 ]] || die "$what: $(wc -w <<<"$kids") processes beside the main one on 4 connections, want 2 + 4"
for k in $kids; do
    [[ $(threads "$k") == 1 ]] || die "$what: process $k has $(threads "$k") threads, want 1"
done
[[ $(threads "$CLONE_PID") == 2 ]] || die "$what: main process has $(threads "$CLONE_PID") threads on 4 connections, want 2"
release_conns
sleep 0.3
[[ $("${CLIENT[@]}" children "$CLONE_PID") == "$bgs" ]] ||
    die "$what: processes beside the main one once the connections closed: $("${CLIENT[@]}" children "$CLONE_PID"), want $bgs"
ok "$what: 1 + 2 + 4 processes on 4 connections (the main one of 2 threads: 1 + 1 background; 2 background and 4 connection processes of 1 thread), 1 + 2 once they close"
"${CLIENT[@]}" check --proto memcached --port "$port" --sizes get=1030,100 --sizes set=8 ||
    die "$what: protocol checks"
ok "$what: memcached replies, pipelining, split requests, malformed input"
# A background process's wake-ups: the one with an epoll set sleeps in epoll_wait.
wakes() { awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$1/status"; }
for k in $bgs; do
    if ls -l "/proc/$k/fd" | grep -q 'anon_inode:\[eventpoll\]'; then bg_fixed=$k; else bg_coupled=$k; fi
done
w0=($(wakes "$bg_fixed") $(wakes "$bg_coupled"))
wchar() { awk '/^wchar/ { print $2 }' "/proc/$1/io"; }
b0=$(wchar "$bg_coupled")
t0=$(date +%s%N)
# One request at a time, 5 ms apart: recvfrom (EAGAIN), epoll_wait, recvfrom, sendto.
NOT_KIDS=$bgs SERIAL_FLAGS="--pause 0.005" measure ppc-epoll memcached get,set "$port" \
    "epoll_wait=1 recvfrom=2 sendto=1 pread64=0.5 openat=1 write=0.5 fdatasync=0.25 epoll_ctl=0 read=0 sendmsg=0 poll=0 accept4=0" \
    "kids:$CLONE_PID"
t1=$(date +%s%N)
w1=($(wakes "$bg_fixed") $(wakes "$bg_coupled"))
secs=$(((t1 - t0) / 1000000))
fixed=$((w1[0] - w0[0])) coupled=$((w1[1] - w0[1]))
# 5 and 10 a second, the second's 1 a request counted in the connection's process
((fixed <= 6 * secs / 1000 + 5)) || die "$what: the epoll_wait background process woke $fixed times in $secs ms, want 5 a second"
((coupled - 10 * secs / 1000 >= STRACE_REQUESTS / 2)) ||
    die "$what: the load-coupled background process woke $coupled times in $secs ms for $STRACE_REQUESTS requests served in another process, want 10 a second + about 1 a request"
ok "$what: background processes woke $fixed and $coupled times in $secs ms of $STRACE_REQUESTS requests (5 a second; 10 a second + 1 a request served by the connection's process)"
# Its disk calls, half a write of 8 KiB a request served: within a write, each call's
# accumulator starting at a random phase.
wrote=$(($(wchar "$bg_coupled") - b0))
((wrote >= (STRACE_REQUESTS / 2 - 1) * 8192 && wrote <= (STRACE_REQUESTS / 2 + 1) * 8192)) ||
    die "$what: the load-coupled background process wrote $wrote bytes for $STRACE_REQUESTS requests, want 8 KiB for each 2"
ok "$what: the WAL-writer-like background process wrote $wrote bytes for $STRACE_REQUESTS requests served (8 KiB each 2)"
# Pipelined, 8 requests ahead: a receive finds the next request waiting, seldom a wait.
NOT_KIDS=$bgs SERIAL_FLAGS="--depth 8" measure ppc-epoll-pipelined memcached get,set "$port" \
    "epoll_wait<=0.2 recvfrom<=1.2 sendto<=1 pread64=0.5 openat=1 write=0.5 fdatasync=0.25 epoll_ctl=0 read=0 sendmsg=0" \
    "kids:$CLONE_PID"
hold_conns "$port" 2
stop_clone $name "$CLONE_PID" "$dir" # the background processes are among the children checked
release_conns
for k in $bgs; do
    [[ -e /proc/$k ]] && die "$what: background process $k still there after SIGTERM"
done
ok "$what: SIGTERM -> exit 0, its 2 background processes and 2 connection processes gone"
# Killed, the main process takes its background and connection processes along.
port=$(free_port)
dir=$TMP/work-ppc-kill
start_clone $name "$port" --dir "$dir"
hold_conns "$port" 2
kids=$("${CLIENT[@]}" children "$CLONE_PID")
STARTED+=($kids)
[[ $(wc -w <<<"$kids") == 4 ]] || die "$what: $(wc -w <<<"$kids") processes beside the main one on 2 connections, want 2 + 2"
t0=$(date +%s%N)
disown "$CLONE_PID" # (no "Killed" line from the shell)
kill -KILL "$CLONE_PID"
left=$kids
while [[ -n $left ]]; do
    left=$(for k in $left; do
        [[ -e /proc/$k && $(sed 's/.*) //' "/proc/$k/stat" 2>/dev/null | cut -d' ' -f1) != Z ]] && echo "$k"
    done)
    (($(date +%s%N) - t0 < 1000000000)) || die "$what: processes $left left 1 s after SIGKILL of the main process"
    sleep 0.01
done
ms=$((($(date +%s%N) - t0) / 1000000))
release_conns
rm -rf "$dir"
ok "$what: SIGKILL of the main process: its 2 background and 2 connection processes gone in $ms ms"
unset TWIN_TEST_POLL TWIN_TEST_BGPROC

# A serialized section (taken at set, given at get): a thread and a process per connection
# wait for it; --no-locks serves without it.
export TWIN_TEST_LOCK=1
for net in 3 5; do
    export TWIN_TEST_NET=$net
    port=$(free_port)
    dir=$TMP/work-lock-$net
    start_clone $name "$port" --dir "$dir"
    "${CLIENT[@]}" locks --proto memcached --port "$port" || die "net model $net: serialized section"
    stop_clone $name "$CLONE_PID" "$dir"
    ok "net model $net: a set waits for the section's holder's get, or 1 s where none comes"
done
# Latch waits: in epoll_wait on a signalfd, woken by the giver's kill (a
# process per connection) or tgkill (a thread); never a futex wait.
export TWIN_TEST_LOCK=latch
for net in 3 5; do
    export TWIN_TEST_NET=$net
    port=$(free_port)
    dir=$TMP/work-latch-$net
    start_clone $name "$port" --dir "$dir"
    strace -f -qq -e trace=kill,tgkill,epoll_wait,futex -o "$TMP/latch-$net.strace" -p "$CLONE_PID" &
    tracer=$!
    STARTED+=("$tracer")
    sleep 0.5
    "${CLIENT[@]}" locks --proto memcached --port "$port" || die "net model $net: latch section"
    sleep 0.2
    kill -INT "$tracer" 2>/dev/null
    wait "$tracer" 2>/dev/null
    stop_clone $name "$CLONE_PID" "$dir"
    want=$([[ $net == 5 ]] && echo kill || echo tgkill)
    signals=$(grep -c "^[0-9]* *$want(.*SIGURG" "$TMP/latch-$net.strace")
    waits=$(grep -c "epoll_wait(" "$TMP/latch-$net.strace")
    futexes=$(grep -c "FUTEX_WAIT" "$TMP/latch-$net.strace")
    ((signals == 1 && waits >= 2 && futexes == 0)) ||
        die "net model $net: latch: $signals $want of SIGURG (want 1), $waits epoll_wait (2 or more), $futexes futex waits (none)"
    ok "net model $net: latch waits: $want of SIGURG 1, epoll_wait $waits, no futex wait"
done
export TWIN_TEST_LOCK=1
port=$(free_port)
start_clone $name "$port" --dir "$TMP/work-nolock" --no-locks
"${CLIENT[@]}" locks free --proto memcached --port "$port" || die "--no-locks: a set waited"
stop_clone $name "$CLONE_PID" "$TMP/work-nolock"
ok "--no-locks: no set waits"
unset TWIN_TEST_LOCK

# A cold cache: a get's pread made for each of 64 pages the first time any connection's
# process touches it, one a get. Two connections of 400 gets in turn make 64 in all: the
# first fills the pages (it leaves 64 e^-6.25 = 0.12 of them), the second finds them in (a
# bitmap of each process's own would make 128).
export TWIN_TEST_COLD=64 TWIN_TEST_NET=5
port=$(free_port)
dir=$TMP/work-cold
start_clone $name "$port" --dir "$dir"
strace -f -qq -e trace=pread64 -o "$TMP/cold.strace" -p "$CLONE_PID" &
tracer=$!
STARTED+=("$tracer")
sleep 0.5
for k in 1 2; do
    touch "$TMP/cold$k.go"
    "${CLIENT[@]}" serial --proto memcached --port "$port" --count 400 --verbs get --gate "$TMP/cold$k" ||
        die "cold cache: connection $k"
done
sleep 0.2
kill -INT "$tracer" 2>/dev/null
wait "$tracer" 2>/dev/null
stop_clone $name "$CLONE_PID" "$dir"
reads=$(grep -c "pread64(" "$TMP/cold.strace")
procs=$(grep "pread64(" "$TMP/cold.strace" | cut -d' ' -f1 | sort -u | wc -l)
((reads >= 63 && reads <= 64)) || die "cold cache: $reads pread64 over 800 gets on 64 pages (want 64: each page once)"
ok "cold cache: $reads pread64 over 800 gets of two connections' processes ($procs made them) on 64 pages"
unset TWIN_TEST_COLD

export TWIN_TEST_NET=6 # processes of threads behind a listener
port=$(free_port)
dir=$TMP/work-pt
start_clone $name "$port" --dir "$dir" --workers 2
kids=$("${CLIENT[@]}" children "$CLONE_PID")
STARTED+=($kids)
[[ $(wc -w <<<"$kids") == 2 ]] || die "processes of threads: $(wc -w <<<"$kids") processes, want 2"
for k in $kids; do
    [[ $(threads "$k") == 6 ]] || die "processes of threads: process $k has $(threads "$k") threads, want 1 + listener + 4"
done
hold_conns "$port" 6
for k in $kids; do
    [[ $(threads "$k") == 6 ]] || die "processes of threads: process $k has $(threads "$k") threads on 6 connections, want 6"
done
release_conns
ok "processes of threads: 2 processes of 6 threads (1 + listener + 4), the same on 6 connections"
"${CLIENT[@]}" check --proto memcached --port "$port" --sizes get=1030,100 --sizes set=8 ||
    die "processes of threads: protocol checks"
ok "processes of threads: memcached replies, pipelining, split requests, malformed input"
measure pt memcached get,set "$port" "$BLOCKING_CALLS close=0.5 futex=0" $kids
stop_clone $name "$CLONE_PID" "$dir"
unset TWIN_TEST_NET

# --- the main thread's stack, whatever the environment ------------------------
# Blocked in a system call, a thread's stack pointer is in /proc/PID/syscall. With
# environments 3000 bytes apart it must lie at one offset in the 2 MiB set period.
name=example_resp
sps=()
for pad in 0 3000; do
    port=$(free_port)
    WRAP=(env -i "PAD=$(head -c "$pad" /dev/zero | tr '\0' x)")
    start_clone $name "$port" --dir "$TMP/stack-$pad"
    sleep 0.2
    read -r _ _ _ _ _ _ _ sp _ <"/proc/$CLONE_PID/syscall"
    [[ $sp == 0x* ]] || die "$name: no stack pointer in /proc/$CLONE_PID/syscall: $(cat "/proc/$CLONE_PID/syscall")"
    sps+=($((sp % (2 << 20))))
    stop_clone $name "$CLONE_PID" "$TMP/stack-$pad"
done
WRAP=()
[[ ${sps[0]} == "${sps[1]}" ]] || die "$name: the main thread's stack moves with the environment: at ${sps[0]} and ${sps[1]} in its 2 MiB period"
ok "$name: the main thread's stack at one offset in 2 MiB (${sps[0]}) with environments 3000 bytes apart"

# --- valgrind memcheck ------------------------------------------------------------
if command -v valgrind >/dev/null; then
    for run in example_clone example_resp example_http example_pg example_blocking example_blocking:epoll; do
        name=${run%:*} env=()
        # a process per connection waiting in epoll, beside 2 background processes
        [[ $run == *:epoll ]] && env=(env TWIN_TEST_NET=5 TWIN_TEST_POLL=epoll TWIN_TEST_BGPROC=2)
        case $name in
        example_clone | example_blocking) check=(--proto memcached --sizes get=1030,100 --sizes set=8) ;;
        example_resp) check=(--proto resp --sizes GET=5,16,107,4000 --sizes SET=5) ;;
        example_http) check=(--proto http --sizes GET=217,250,1000,10000,100000) ;;
        example_pg) check=(--proto pg "${PG_SIZES[@]}") ;;
        esac
        port=$(free_port)
        dir=$TMP/vg-$name
        WRAP=("${env[@]}" valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible
            --trace-children=no --child-silent-after-fork=no)
        START_TIMEOUT=60 start_clone $name "$port" --dir "$dir"
        "${CLIENT[@]}" check "${check[@]}" --port "$port" || die "$name under valgrind: protocol checks"
        STOP_TIMEOUT=60 stop_clone $name "$CLONE_PID" "$dir"
        [[ ! -s $TMP/$name.err ]] || die "$name under valgrind: $(head -30 "$TMP/$name.err")"
        ok "$run under valgrind memcheck: no errors, no definite or possible leaks"
    done
    WRAP=()
else
    echo "skip valgrind (not installed)"
fi

echo "all runtime tests passed"
