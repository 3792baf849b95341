#!/usr/bin/env bash
# End-to-end tests of twin-load: builds, runs the unit tests, then drives
# the delay server in each protocol and checks rate, latency and errors,
# the connect-failure exit, the usage errors of ops a protocol lacks, real
# memcached and redis when installed (redis also with its data-structure
# commands), and a short run under valgrind when installed. Exits non-zero on the first
# failure; prints each check as it passes.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/build
load=$build/twin-load
work=$(mktemp -d)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# json FILE EXPR: a Python expression over the result file's object d.
json() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# within LO X HI: LO <= X <= HI, as floats.
within() { awk -v lo="$1" -v x="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }

# start_delay_server PROTOCOL DELAY_US: starts one on a free port, sets $port.
start_delay_server() {
    local out=$work/delay-$1-$2.port
    "$build/delay-server" --protocol "$1" --port 0 --delay-us "$2" >"$out" &
    pids+=($!)
    for _ in $(seq 100); do
        port=$(awk '/^port / { print $2 }' "$out")
        [[ -n $port ]] && return 0
        sleep 0.05
    done
    fail "delay-server $1 did not start"
}

stop_last() {
    local pid=${pids[-1]}
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset 'pids[-1]'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    fail "nothing listening on port $1"
}

# free_port: a port nothing listens on (one the kernel just handed out).
free_port() {
    start_delay_server http 0
    stop_last
}

errors_total() { json "$1" 'sum(d["errors"].values())'; }

# HTTP paths name the drawn key ({key}), drawn Zipf: the delay server answers any path.
mix_for() {
    [[ $1 == http ]] && echo "--req get,1,0,0,/site/{key}.html --key-dist zipf:0.99" ||
        echo "--req get,9,0,0 --req set,1,10,100"
}

# --- build ------------------------------------------------------------------
make -C "$here" clean >/dev/null
if make -C "$here" all >"$work/build.log" 2>&1; then :; else cat "$work/build.log"; fail "build"; fi
grep -qi 'warning' "$work/build.log" && { cat "$work/build.log"; fail "compiler warnings"; }
ok "build without warnings"

"$build/unit-test" || fail "unit tests"

# --- delay server, 2000 us ----------------------------------------------------
for proto in memcached resp http; do
    start_delay_server "$proto" 2000
    out=$work/$proto-2000.json
    # shellcheck disable=SC2046
    "$load" --port "$port" --protocol "$proto" --rate 500 --duration 3 --connections 4 \
        $(mix_for "$proto") --out "$out" || fail "$proto: twin-load exited $?"
    stop_last
    errs=$(errors_total "$out")
    rate=$(json "$out" 'd["achieved_rps"]')
    p50=$(json "$out" 'd["latency_us"]["p50"]')
    [[ $errs == 0 ]] || fail "$proto: $errs errors: $(json "$out" 'd["errors"]')"
    within 475 "$rate" 525 || fail "$proto: achieved $rate req/s, target 500"
    within 2000 "$p50" 3500 || fail "$proto: p50 $p50 us with a 2000 us delay"
    ok "$proto 500 req/s, delay 2000 us: achieved $rate req/s, p50 $p50 us, p99 $(json "$out" 'd["latency_us"]["p99"]') us, 0 errors"
done

# --- a server that answers after the window ---------------------------------
# Every answer comes 500 ms late: of a second's 200 requests, those sent in its first half
# are answered within it, the rest after it. The achieved rate counts the first (a server
# that falls behind answers the rest late, and must not read as keeping up); all are answered.
start_delay_server resp 500000
out=$work/late.json
"$load" --port "$port" --protocol resp --rate 200 --duration 1 --warmup 0 --connections 4 \
    --dist constant --req get,1,0,0 --out "$out" || fail "late: twin-load exited $?"
stop_last
rate=$(json "$out" 'd["achieved_rps"]')
answered=$(json "$out" 'd["requests"]')
within 80 "$rate" 120 || fail "late: achieved $rate req/s with half the answers after the window"
within 195 "$answered" 205 || fail "late: $answered of 200 requests answered"
ok "answers 500 ms late at 200 req/s over 1 s: achieved $rate req/s, $answered answered"

# --- an output that is no regular file ------------------------------------------
# Written to, not replaced by a rename: a pipe stays a pipe, and its reader gets the result.
mkfifo "$work/pipe"
timeout 20 cat "$work/pipe" >"$work/piped.json" &
reader=$!
start_delay_server memcached 0
"$load" --port "$port" --protocol memcached --rate 100 --duration 1 --out "$work/pipe" ||
    fail "pipe: twin-load exited $?"
stop_last
wait "$reader" || fail "pipe: its reader got nothing"
[[ -p $work/pipe ]] || fail "pipe: --out replaced the pipe with a file"
ok "--out to a pipe: still a pipe, its reader got achieved $(json "$work/piped.json" 'd["achieved_rps"]') req/s"

# --- delay server, no delay ---------------------------------------------------
for proto in memcached resp http; do
    start_delay_server "$proto" 0
    out=$work/$proto-0.json
    # shellcheck disable=SC2046
    "$load" --port "$port" --protocol "$proto" --rate 200 --duration 2 --connections 4 \
        $(mix_for "$proto") --out "$out" || fail "$proto: twin-load exited $?"
    stop_last
    p50=$(json "$out" 'd["latency_us"]["p50"]')
    [[ $(errors_total "$out") == 0 ]] || fail "$proto: errors: $(json "$out" 'd["errors"]')"
    within 0 "$p50" 999.999 || fail "$proto: p50 $p50 us with no delay"
    ok "$proto 200 req/s, no delay: achieved $(json "$out" 'd["achieved_rps"]') req/s, p50 $p50 us"
done

# --- one request in flight ----------------------------------------------------
# Scheduled at 2000 req/s against a 2 ms delay, 300 requests one at a time take at
# least 0.6 s; sent together as scheduled they would take about 0.15 s.
start_delay_server http 2000
out=$work/inflight.json
t0=$(date +%s.%N)
"$load" --port "$port" --protocol http --rate 2000 --duration 10 --warmup 0 --connections 4 \
    --threads 2 --max-inflight 1 --max-requests 300 --dist constant --req get,1,0,0,/ \
    --out "$out" || fail "max-inflight: twin-load exited $?"
t1=$(date +%s.%N)
stop_last
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
[[ $(json "$out" 'd["sent"]') == 300 ]] || fail "max-inflight: sent $(json "$out" 'd["sent"]'), want 300"
[[ $(errors_total "$out") == 0 ]] || fail "max-inflight: errors: $(json "$out" 'd["errors"]')"
within 0.6 "$elapsed" 9 || fail "max-inflight 1: 300 requests of 2 ms took $elapsed s"
ok "max-inflight 1: 300 requests of 2 ms, one at a time, in $elapsed s"

# --- marks ------------------------------------------------------------------------
# Before requests 100 and 200 of 300, one at a time, twin-load says "mark K" and waits for
# a line: answered after 0.5 s each, the run takes at least 1 s more than without.
start_delay_server http 0
out=$work/marks.json
t0=$(date +%s.%N)
"$load" --port "$port" --protocol http --rate 2000 --duration 10 --warmup 0 --connections 4 \
    --threads 2 --max-inflight 1 --max-requests 300 --dist constant --req get,1,0,0,/ \
    --mark-at 100 --mark-at 200 --out "$out" < <(sleep 0.5; echo; sleep 0.5; echo) >"$work/marks.out" ||
    fail "marks: twin-load exited $?"
t1=$(date +%s.%N)
stop_last
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
[[ $(tr '\n' ' ' <"$work/marks.out") == "mark 100 mark 200 " ]] || fail "marks: said '$(cat "$work/marks.out")'"
[[ $(json "$out" 'd["sent"]') == 300 ]] || fail "marks: sent $(json "$out" 'd["sent"]'), want 300"
within 1 "$elapsed" 9 || fail "marks: two marks held 0.5 s each, yet the run took $elapsed s"
set +e
"$load" --port "$port" --protocol http --rate 100 --duration 1 --mark-at 5 2>"$work/marks.err"
rc=$?
set -e
[[ $rc == 2 ]] && grep -q "needs --max-inflight 1" "$work/marks.err" || fail "marks without --max-inflight 1: exit $rc"
ok "marks: 'mark 100', 'mark 200', each held until a line came ($elapsed s); refused without --max-inflight 1"

# --- nothing listening ----------------------------------------------------------
free_port
closed=$port
set +e
"$load" --port "$closed" --protocol memcached --rate 100 --duration 1 >"$work/closed.out" 2>"$work/closed.err"
rc=$?
set -e
[[ $rc == 2 ]] || fail "closed port: exit $rc, want 2"
[[ $(wc -l <"$work/closed.err") == 1 ]] || fail "closed port: stderr is not one line: $(cat "$work/closed.err")"
grep -q "^twin-load: cannot connect to 127.0.0.1:$closed: " "$work/closed.err" ||
    fail "closed port: unexpected message: $(cat "$work/closed.err")"
[[ ! -s $work/closed.out ]] || fail "closed port: wrote to stdout"
ok "closed port: exit 2, '$(cat "$work/closed.err")'"

# --- ops a protocol lacks ----------------------------------------------------------
for args in "memcached lpush" "memcached incr" "http hset" "http set"; do
    read -r proto op <<<"$args"
    set +e
    "$load" --port 1 --protocol "$proto" --rate 1 --duration 1 --req "$op,1,1,1" 2>"$work/noop.err"
    rc=$?
    set -e
    [[ $rc == 2 && $(cat "$work/noop.err") == "twin-load: --req: $proto has no $op" ]] ||
        fail "$proto $op: exit $rc, '$(cat "$work/noop.err")'"
done
ok "memcached and http refuse incr, lpush, hset, set: exit 2, '$(cat "$work/noop.err")'"

# --- real servers -----------------------------------------------------------------
real_run() { # NAME PROTOCOL PORT
    local out=$work/$1.json
    "$load" --port "$3" --protocol "$2" --preload --keys 2000 --req get,9,0,0 --req set,1,50,500 \
        --rate 1000 --duration 2 --out "$out" || fail "$1: twin-load exited $?"
    [[ $(errors_total "$out") == 0 ]] || fail "$1: errors: $(json "$out" 'd["errors"]')"
    # After the preload every GET finds its key: no 5-byte miss replies
    # (memcached "END\r\n", redis "$-1\r\n").
    local misses
    misses=$(json "$out" 'sum(c for s, c in d["ops"][0]["resp_sizes"] if s == 5)')
    [[ $misses == 0 ]] || fail "$1: $misses GET misses after --preload"
    ok "$1 with --preload: achieved $(json "$out" 'd["achieved_rps"]') req/s, p50 $(json "$out" 'd["latency_us"]["p50"]') us, 0 errors"
}

if [[ -x /usr/bin/memcached ]]; then
    free_port
    mport=$port
    user=()
    [[ $(id -u) == 0 ]] && user=(-u root)   # memcached refuses to run as root without -u
    /usr/bin/memcached -p "$mport" -U 0 -l 127.0.0.1 "${user[@]}" &
    pids+=($!)
    wait_port "$mport"
    real_run memcached memcached "$mport"
    stop_last
else
    echo "skip: memcached not installed"
fi

if [[ -x /usr/bin/redis-server ]]; then
    free_port
    rport=$port
    /usr/bin/redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" &
    pids+=($!)
    wait_port "$rport"
    real_run redis resp "$rport"
    # Every data-structure command against real redis: no -WRONGTYPE nor other error,
    # and after the preload no empty LRANGE (*0, 4 bytes) nor nil HGET ($-1, 5 bytes).
    out=$work/redis-structures.json
    ops=(get set incr lpush lrange hset hget)
    "$load" --port "$rport" --protocol resp --preload --keys 300 --key-dist zipf:0.99 \
        --req get,2,0,0 --req set,1,10,100 --req incr,1,0,0 --req lpush,1,10,50 --req lrange,2,0,0 \
        --req hset,1,10,50 --req hget,2,0,0 --rate 200 --duration 2 --out "$out" ||
        fail "redis structures: twin-load exited $?"
    stop_last
    [[ $(errors_total "$out") == 0 ]] || fail "redis structures: errors: $(json "$out" 'd["errors"]')"
    [[ $(json "$out" '",".join(o["op"] for o in d["ops"] if o["count"] > 0)') == "$(IFS=,; echo "${ops[*]}")" ]] ||
        fail "redis structures: ops $(json "$out" '[(o["op"], o["count"]) for o in d["ops"]]')"
    empty=$(json "$out" 'sum(c for o in d["ops"] for s, c in o["resp_sizes"] if (o["op"], s) in (("lrange", 4), ("hget", 5)))')
    [[ $empty == 0 ]] || fail "redis structures: $empty empty LRANGE or nil HGET replies after --preload"
    ok "redis ${ops[*]}, zipf:0.99, with --preload: $(json "$out" 'd["requests"]') requests, every op answered, 0 errors"
else
    echo "skip: redis-server not installed"
fi

# --- valgrind -----------------------------------------------------------------------
if command -v valgrind >/dev/null; then
    for proto in memcached resp http; do
        start_delay_server "$proto" 500
        preload=()
        [[ $proto != http ]] && preload=(--preload --keys 50)
        # shellcheck disable=SC2046
        valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all \
            "$load" --port "$port" --protocol "$proto" --rate 50 --duration 1 --warmup 0.2 \
            "${preload[@]}" $(mix_for "$proto") --out "$work/vg-$proto.json" 2>"$work/vg-$proto.log" ||
            { cat "$work/vg-$proto.log"; fail "$proto: valgrind"; }
        stop_last
    done
    ok "valgrind memcheck: no errors, no leaks (memcached, resp, http)"
else
    echo "skip: valgrind not installed"
fi

echo "all twin-load tests passed"
