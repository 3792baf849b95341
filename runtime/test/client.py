#!/usr/bin/env python3
"""Test client for the runtime's example clones (standard library only).

  client.py check  --proto P --port N --sizes VERB=S1,S2 ...   protocol checks
      (P: memcached, resp, http, pg; for pg the first --sizes is a verb of rows)
  client.py serial --proto P --port N --count K --verbs V1,V2 --gate PATH
      connects, creates PATH.connected, waits for PATH.go, then sends K
      requests one at a time (verbs in turn), each after the last reply
      (--pause S: S seconds after it; --depth D: D requests ahead, pipelined)
  client.py burst --proto P --port N --conns C --count K --verbs V --gate PATH
      opens C connections, creates PATH.connected, waits for PATH.go, then K
      times sends one request on each at once and reads every reply
  client.py children PID                                       child pids
  client.py counts FILE --count K CALL=RATE ...
      reads a `strace -c` summary; prints every call per request and fails
      when a listed call is off its expected per-request rate (CALL<=RATE:
      above it)

Every reply is parsed completely; a sized reply must be exactly one of the
sizes configured for its verb. Exits 1 with one line on the first failure.
"""
import argparse
import os
import socket
import struct
import sys
import threading
import time


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def send_slowly(self, data, step=1, pause=0.002):
        for i in range(0, len(data), step):
            self.s.sendall(data[i:i + step])
            time.sleep(pause)

    def fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise Fail("connection closed early")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect_eof(self, what):
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    break
                self.buf += d
        except ConnectionResetError:
            pass
        check(self.buf == b"", f"{what}: unexpected bytes before close: {self.buf[:60]!r}")

    def close(self):
        self.s.close()


# --- protocols: request builders and reply readers -------------------------

class Memcached:
    name = "memcached"

    @staticmethod
    def get(key="foo"):
        return f"get {key}\r\n".encode()

    @staticmethod
    def set(key="foo", value=b"hello"):
        return f"set {key} 0 0 {len(value)}\r\n".encode() + value + b"\r\n"

    @staticmethod
    def read(c):
        first = c.line()
        if first.startswith(b"VALUE "):
            parts = first.split()
            check(len(parts) == 4 and parts[2] in (b"0", b"00"), f"bad VALUE line {first!r}")
            n = int(parts[3])
            data = c.take(n + 2)
            check(data.endswith(b"\r\n"), "VALUE data does not end in CRLF")
            end = c.line()
            check(end == b"END\r\n", f"no END after VALUE: {end!r}")
            return first + data + end
        return first

    def request(self, verb, i):
        return self.get(f"key{i}") if verb == "get" else self.set(f"key{i}", b"v" * (i % 50 + 1))

    def check_reply(self, verb, raw, sizes, key=None):
        if verb == "get":
            if raw == b"END\r\n":
                check(key is not None and min(sizes[verb]) < 19 + len(key),
                      "END for a size that fits a VALUE")
                return
            check(raw.startswith(b"VALUE "), f"get answered {raw[:40]!r}")
            if key is not None:
                check(raw.split()[1] == key.encode(), "VALUE of another key")
            check(len(raw) in sizes[verb], f"get reply of {len(raw)} bytes, want {sizes[verb]}")
        else:
            check(raw == b"STORED\r\n", f"set answered {raw!r}")


class Resp:
    name = "resp"

    @staticmethod
    def cmd(*args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        return out

    @staticmethod
    def read(c):
        first = c.line()
        if first.startswith(b"$"):
            n = int(first[1:-2])
            if n < 0:
                return first
            data = c.take(n + 2)
            check(data.endswith(b"\r\n"), "bulk string does not end in CRLF")
            return first + data
        check(first[:1] in (b"+", b"-", b":"), f"not a RESP reply: {first[:40]!r}")
        return first

    def request(self, verb, i):
        if verb == "GET":
            return self.cmd("GET", f"key{i}")
        return self.cmd("SET", f"key{i}", "v" * (i % 50 + 1))

    def check_reply(self, verb, raw, sizes, key=None):
        if verb == "GET":
            check(raw[:1] in (b"$", b"+"), f"GET answered {raw[:40]!r}")
            check(len(raw) in sizes[verb], f"GET reply of {len(raw)} bytes, want {sizes[verb]}")
            if len(raw) == 5:
                check(raw == b"$-1\r\n", "size 5 is not the null bulk string")
        else:
            check(raw == b"+OK\r\n", f"SET answered {raw!r}")


class Http:
    name = "http"

    @staticmethod
    def req(method="GET", path="/", version="HTTP/1.1", headers=(), body=b""):
        h = f"{method} {path} {version}\r\nHost: test\r\n"
        for k, v in headers:
            h += f"{k}: {v}\r\n"
        if body:
            h += f"Content-Length: {len(body)}\r\n"
        return (h + "\r\n").encode() + body

    @staticmethod
    def read(c, head=False):
        lines = [c.line()]
        while lines[-1] != b"\r\n":
            lines.append(c.line())
        check(lines[0].startswith(b"HTTP/1.1 "), f"bad status line {lines[0]!r}")
        headers = {}
        for ln in lines[1:-1]:
            k, _, v = ln.decode().partition(":")
            check(_ == ":", f"bad header line {ln!r}")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        body = b"" if head else c.take(n)
        return b"".join(lines) + body, headers

    def request(self, verb, i):
        return self.req(verb, f"/file{i}.html")

    def check_reply(self, verb, raw, sizes, key=None):
        check(raw.startswith(b"HTTP/1.1 200 OK\r\n"), f"status {raw[:30]!r}")
        check(len(raw) in sizes[verb], f"reply of {len(raw)} bytes, want {sizes[verb]}")


class Pg:
    """PostgreSQL v3, simple query. A reply is every message up to ReadyForQuery."""
    name = "pg"
    SSL = struct.pack("!II", 8, 80877103)
    GSSENC = struct.pack("!II", 8, 80877104)
    CANCEL = struct.pack("!IIII", 16, 80877102, 1234, 5678)
    SQL = {
        "select": "SELECT abalance FROM pgbench_accounts WHERE aid = {i};",
        "update": "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = {i};",
        "insert": "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, {i}, 1, now());",
        "begin": "BEGIN;",
        "end": "END;",
    }
    # The row count a tag ends with, zero-padded, or its whole text; the status after it.
    TAGS = {"update": (b"UPDATE ", b"I"), "insert": (b"INSERT 0 ", b"I"),
            "begin": (b"BEGIN", b"T"), "end": (b"COMMIT", b"I")}

    @staticmethod
    def msg(kind, body):
        return kind + struct.pack("!I", len(body) + 4) + body

    @staticmethod
    def query(sql):
        return Pg.msg(b"Q", sql.encode() + b"\0")

    @staticmethod
    def startup(app="client.py"):
        body = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0application_name\0"
        body += app.encode() + b"\0\0"
        return struct.pack("!I", len(body) + 4) + body

    @staticmethod
    def read_msg(c):
        head = c.take(5)
        n = struct.unpack("!I", head[1:])[0]
        check(head[:1].isalpha() and 4 <= n < 1 << 30, f"not a message header: {head!r}")
        return head + c.take(n - 4)

    @staticmethod
    def read(c):
        raw = b""
        while True:
            m = Pg.read_msg(c)
            raw += m
            if m[:1] == b"Z":
                return raw

    @staticmethod
    def messages(raw):
        """(type, body) of each message, the last one ReadyForQuery."""
        out, i = [], 0
        while i < len(raw):
            check(i + 5 <= len(raw), f"a message header cut at byte {i}")
            n = struct.unpack("!I", raw[i + 1:i + 5])[0]
            check(n >= 4 and i + 1 + n <= len(raw), f"message {raw[i:i + 1]!r} of length {n} past the reply")
            out.append((raw[i:i + 1], raw[i + 5:i + 1 + n]))
            i += 1 + n
        check(out and out[-1][0] == b"Z" and len(out[-1][1]) == 1 and out[-1][1] in b"IT",
              f"no ReadyForQuery at the end: {raw[-8:]!r}")
        return out

    @staticmethod
    def rows(raw):
        """The columns and the values of a row set (None for NULL); its status byte."""
        ms = Pg.messages(raw)
        check([t for t, _ in ms] == [b"T", b"D", b"C", b"Z"], f"row set of {[t for t, _ in ms]}")
        (_, desc), (_, row), (_, tag), (_, z) = ms
        cols = struct.unpack("!H", desc[:2])[0]
        check(cols >= 1 and len(desc) == 2 + 20 * cols, f"RowDescription of {cols} columns, {len(desc)} bytes")
        check(struct.unpack("!H", row[:2])[0] == cols, "DataRow of another column count")
        values, i = [], 2
        for _ in range(cols):
            n = struct.unpack("!i", row[i:i + 4])[0]
            values.append(None if n == -1 else row[i + 4:i + 4 + n])
            i += 4 + max(n, 0)
        check(i == len(row), "DataRow longer than its columns")
        check(tag == b"SELECT 1\0", f"tag {tag!r}")
        return cols, values, z

    def request(self, verb, i):
        return self.startup() if verb == "startup" else self.query(self.SQL[verb].format(i=i))

    def check_reply(self, verb, raw, sizes, key=None):
        if verb == "startup":
            ms = self.messages(raw)
            check(ms[0] == (b"R", b"\0\0\0\0") and ms[-2][0] == b"K" and len(ms[-2][1]) == 8,
                  f"start-up reply {[t for t, _ in ms]}")
            params = dict(body[:-1].split(b"\0", 1) for t, body in ms if t == b"S")
            check(params.get(b"server_version", b"").startswith(b"15.0") and
                  params.get(b"client_encoding") == b"UTF8", f"parameters {sorted(params)}")
            check(ms[-1][1] == b"I", "start-up not idle")
        elif verb == "select":
            cols, values, z = self.rows(raw)
            check(cols == 1 and values[0].isdigit() and int(values[0]) == 1 and z == b"I",
                  f"row {values}, status {z}")
        else:
            ms = self.messages(raw)
            prefix, status = self.TAGS[verb]
            check(len(ms) == 2 and ms[0][0] == b"C" and ms[0][1].startswith(prefix), f"{verb} answered {raw!r}")
            count = ms[0][1][len(prefix):-1]
            check(count == b"" if prefix == b"BEGIN" or prefix == b"COMMIT" else int(count) == 1,
                  f"{verb}: tag {ms[0][1]!r}")
            check(ms[1][1] == status, f"{verb}: status {ms[1][1]!r}, want {status!r}")
        check(len(raw) in sizes[verb], f"{verb} reply of {len(raw)} bytes, want {sizes[verb]}")


PROTOS = {"memcached": Memcached(), "resp": Resp(), "http": Http(), "pg": Pg()}


def read_reply(p, c, **kw):
    r = p.read(c, **kw)
    return r[0] if isinstance(r, tuple) else r


# --- checks -----------------------------------------------------------------

def check_common(p, port, sizes):
    """Pipelining, concurrency and back-pressure, the same for every protocol."""
    verbs = list(sizes)
    # 60 mixed requests in one send: 60 replies, in order.
    c = Conn(port)
    c.send(b"".join(p.request(verbs[i % len(verbs)], i) for i in range(60)))
    for i in range(60):
        p.check_reply(verbs[i % len(verbs)], read_reply(p, c), sizes)
    c.close()

    # Enough pipelined requests that the replies cannot all be sent at once
    # while the client is not reading: the server must finish them later.
    c = Conn(port)
    get = verbs[0]
    n = 3000 if p.name != "http" else 300
    c.send(b"".join(p.request(get, i) for i in range(n)))
    time.sleep(0.5)
    seen = set()
    for i in range(n):
        raw = read_reply(p, c)
        p.check_reply(get, raw, sizes)
        seen.add(len(raw))
    check(seen == set(sizes[get]), f"sizes seen {sorted(seen)}, configured {sorted(sizes[get])}")
    c.close()

    # Concurrent connections.
    errors = []

    def worker(k):
        try:
            cc = Conn(port)
            for i in range(30):
                v = verbs[(i + k) % len(verbs)]
                cc.send(p.request(v, i))
                p.check_reply(v, read_reply(p, cc), sizes)
            cc.close()
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, f"concurrent clients: {errors[:2]}")

    # Clients that vanish mid-request or mid-reply.
    for data in (p.request(get, 1)[:5], p.request(get, 1) * 200):
        c = Conn(port)
        c.send(data)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()


def check_memcached(port, sizes):
    p = PROTOS["memcached"]
    c = Conn(port)
    c.send(p.get("foo"))
    p.check_reply("get", p.read(c), sizes, key="foo")
    c.send(p.set("foo", b"hello"))
    p.check_reply("set", p.read(c), sizes)
    # A set whose data arrives later, and a command line split in two.
    c.send(b"set split 0 0 10\r\n01234")
    time.sleep(0.1)
    c.send(b"56789\r\n")
    check(p.read(c) == b"STORED\r\n", "split set")
    c.send(b"ge")
    time.sleep(0.05)
    c.send(b"t part\r\n")
    p.check_reply("get", p.read(c), sizes, key="part")
    c.send_slowly(p.set("slow", b"abcdefgh"))
    check(p.read(c) == b"STORED\r\n", "set sent a byte at a time")
    # A large value (buffer growth), sent in pieces.
    big = b"x" * 300000
    c.send_slowly(p.set("big", big), step=65536, pause=0.01)
    check(p.read(c) == b"STORED\r\n", "large set")
    # noreply, case-insensitive verbs, multi-get, unknown commands.
    c.send(b"set q 0 0 1 noreply\r\nx\r\nGET upper\r\nget a b c\r\n")
    p.check_reply("get", p.read(c), sizes, key="upper")
    p.check_reply("get", p.read(c), sizes, key="a")
    c.send(b"frobnicate\r\n")
    check(p.read(c) == b"ERROR\r\n", "unknown command")
    c.send(b"delete foo\r\n")
    check(p.read(c) == b"DELETED\r\n", "delete")
    # A key length at which the total hits the gap in decimal lengths (flags
    # "00"), and one too long for the smallest size (END).
    c.send(p.get("k" * 9))
    raw = p.read(c)
    p.check_reply("get", raw, sizes, key="k" * 9)
    c.send(p.get("k" * 90))
    p.check_reply("get", p.read(c), sizes, key="k" * 90)
    c.send(b"quit\r\n")
    c.expect_eof("quit")
    c.close()
    flags00 = 0
    c = Conn(port)
    for _ in range(40):
        c.send(p.get("k" * 9))
        raw = p.read(c)
        p.check_reply("get", raw, sizes, key="k" * 9)
        flags00 += raw.split()[2] == b"00"
    check(flags00 > 0 or 1030 not in sizes["get"], "no padded VALUE line at a gap size")
    c.close()
    # Malformed input: an error reply, then the server closes.
    for bad, reply in ((b"set k 0 0 nan\r\n", b"CLIENT_ERROR malformed request\r\n"),
                       (b"set k 0 0 3\r\nabcdef\r\n", b"CLIENT_ERROR data block not ended by CRLF\r\n"),
                       (b"g" * 3000, b"CLIENT_ERROR request line over the limit\r\n"),
                       (b"get " + b"k" * 300 + b"\r\n",
                        b"CLIENT_ERROR malformed request\r\n")):
        c = Conn(port)
        c.send(bad)
        got = c.line()
        check(got == reply, f"malformed {bad[:20]!r}: got {got!r}")
        c.expect_eof(f"after {reply!r}")
        c.close()
    check_common(p, port, sizes)


def check_resp(port, sizes):
    p = PROTOS["resp"]
    c = Conn(port)
    c.send(p.cmd("GET", "foo"))
    p.check_reply("GET", p.read(c), sizes)
    c.send(p.cmd("SET", "foo", "bar"))
    p.check_reply("SET", p.read(c), sizes)
    c.send(p.cmd("PING"))
    check(p.read(c) == b"+PONG\r\n", "PING")
    c.send(b"PING\r\nget inline\r\n")
    check(p.read(c) == b"+PONG\r\n", "inline PING")
    p.check_reply("GET", p.read(c), sizes)
    # Split at every byte, and a value that arrives in pieces.
    c.send_slowly(p.cmd("SET", "slow", "abcdefghij"))
    check(p.read(c) == b"+OK\r\n", "SET sent a byte at a time")
    c.send_slowly(p.cmd("SET", "big", "y" * 300000), step=65536, pause=0.01)
    check(p.read(c) == b"+OK\r\n", "large SET")
    c.send(p.cmd("INCR", "counter"))
    check(p.read(c).startswith(b"-ERR unknown command"), "unknown command")
    c.send(b"*0\r\n" + p.cmd("get", "lower"))
    p.check_reply("GET", p.read(c), sizes)
    c.send(p.cmd("QUIT"))
    check(p.read(c) == b"+OK\r\n", "QUIT")
    c.expect_eof("QUIT")
    c.close()
    for bad in (b"*abc\r\n", b"*1\r\n:5\r\n", b"*1\r\n$3\r\nabcdef\r\n", b"*1\r\n$-5\r\n"):
        c = Conn(port)
        c.send(bad)
        got = c.line()
        check(got.startswith(b"-ERR Protocol error"), f"malformed {bad!r}: got {got!r}")
        c.expect_eof("after a protocol error")
        c.close()
    check_common(p, port, sizes)


def check_http(port, sizes):
    p = PROTOS["http"]
    c = Conn(port)
    c.send(p.req())
    raw, h = p.read(c)
    p.check_reply("GET", raw, sizes)
    check(h.get("server", "").startswith("twin") and h.get("connection") == "keep-alive" and
          h.get("content-type") == "application/octet-stream", f"headers {h}")
    c.send_slowly(p.req(path="/slow"), step=3)
    p.check_reply("GET", p.read(c)[0], sizes)
    padded = 0
    for i in range(60):
        c.send(p.req(path=f"/{i}"))
        raw, h = p.read(c)
        p.check_reply("GET", raw, sizes)
        padded += h["server"] != "twin"
    check(padded > 0 or 217 not in sizes["GET"], "no padded reply at the 217-byte gap size")
    # A body sent later, HEAD, lowercase method served as op 0.
    body = b"b" * 5000
    req = p.req("POST", "/upload", body=body)
    c.send(req[:-4000])
    time.sleep(0.05)
    c.send(req[-4000:])
    raw, h = p.read(c)
    check(raw.startswith(b"HTTP/1.1 200 OK"), "POST with a body")
    c.send(p.req("HEAD"))
    raw, h = p.read(c, head=True)
    check(h["content-length"] == "0", "HEAD")
    c.close()
    # Connection: close and HTTP/1.0 close after the reply.
    for req in (p.req(headers=[("Connection", "close")]), p.req(version="HTTP/1.0")):
        c = Conn(port)
        c.send(req)
        raw, h = p.read(c)
        check(h.get("connection") == "close", f"Connection header {h.get('connection')}")
        c.expect_eof("Connection: close")
        c.close()
    c = Conn(port)
    c.send(p.req(version="HTTP/1.0", headers=[("Connection", "keep-alive")]) * 2)
    p.read(c)
    p.read(c)
    c.close()
    for bad, status in ((b"GARBAGE\r\n\r\n", b"400"), (b"GET / FTP/9\r\n\r\n", b"400"),
                        (p.req(headers=[("Transfer-Encoding", "chunked")]), b"501"),
                        (b"GET /" + b"a" * (16384 - 5), b"431")):
        c = Conn(port)
        c.send(bad)
        raw, h = p.read(c)
        check(raw.split()[1] == status, f"malformed {bad[:20]!r}: got {raw[:40]!r}")
        c.expect_eof("after an error status")
        c.close()
    check_common(p, port, sizes)


def check_pg(port, sizes):
    p = PROTOS["pg"]
    c = Conn(port)
    c.send(p.SSL)
    check(c.take(1) == b"N", "SSLRequest not answered N")
    c.send(p.startup())
    p.check_reply("startup", p.read(c), sizes)
    c.send(p.query("BEGIN;"))
    raw = p.read(c)
    check(len(raw) == 17 and raw.endswith(b"Z\0\0\0\x05T"), f"BEGIN answered {raw!r}")
    for i in range(20):  # both sizes, each a well-formed row set
        c.send(p.query("SELECT abalance FROM pgbench_accounts WHERE aid = 1;"))
        p.check_reply("select", p.read(c), sizes)
    c.send(p.query("END;"))
    p.check_reply("end", p.read(c), sizes)
    # pgbench's own queries: the scale (a count of 1) and its partitions (3 columns, the
    # method and the count NULL); a select list with parentheses, quotes and a comment.
    for sql, cols in (("select count(*) from pgbench_branches", 1),
                      ("select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c "
                       "join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) group by 1, 2 "
                       "order by 1 asc limit 1", 3),
                      ("/* x, y */ (select 'a, b', \"c,d\", f(1, 2) FROM t)", 3)):
        c.send(p.query(sql))
        n, values, z = p.rows(p.read(c))
        check(n == cols and int(values[0]) == 1 and values[1:] == [None] * (cols - 1) and z == b"I",
              f"{sql[:30]}: {n} columns {values}")
    # Verbs without a row count; an empty query; a query of no word.
    for sql, want in (("vacuum pgbench_branches", b"C\0\0\0\x0bVACUUM\0Z\0\0\0\x05I"),
                      ("Rollback", b"C\0\0\0\x0dROLLBACK\0Z\0\0\0\x05I"),
                      ("  ; ", b"I\0\0\0\x04Z\0\0\0\x05I")):
        c.send(p.query(sql))
        raw = p.read(c)
        check(raw == want, f"{sql!r} answered {raw!r}")
    c.send(p.query("42"))
    raw = p.read(c)
    check(raw.startswith(b"E") and b"C42601\0" in raw and raw.endswith(b"Z\0\0\0\x05I"), f"'42' answered {raw!r}")
    # A message a byte at a time, and a large one in pieces.
    c.send_slowly(p.query("UPDATE t SET v = 1;"))
    p.check_reply("update", p.read(c), sizes)
    c.send_slowly(p.query("INSERT INTO t VALUES ('" + "y" * 300000 + "');"), step=65536, pause=0.01)
    p.check_reply("insert", p.read(c), sizes)
    c.send(p.GSSENC + p.startup("second"))
    check(c.take(1) == b"N", "GSSENCRequest not answered N")
    p.check_reply("startup", p.read(c), sizes)
    c.send(p.msg(b"X", b""))
    c.expect_eof("Terminate")
    c.close()
    c = Conn(port)
    c.send(p.CANCEL)
    c.expect_eof("CancelRequest")
    c.close()
    # The extended protocol, an unknown start-up code and a bad length: an ErrorResponse, then close.
    for bad in (p.msg(b"P", b"\0SELECT 1\0\0\0"), struct.pack("!II", 8, 1234), b"Q\0\0\0\x02"):
        c = Conn(port)
        c.send(bad)
        m = p.read_msg(c)
        check(m[:1] == b"E" and b"C0A000\0" in m and m.endswith(b"\0\0"), f"{bad[:12]!r} answered {m!r}")
        c.expect_eof(f"after the error to {bad[:12]!r}")
        c.close()
    check_common(p, port, sizes)


def serial(p, port, count, verbs, gate, pause=0.0, depth=1):
    """One request at a time, `pause` seconds after each reply; or with `depth` > 1, that
    many sent ahead, the next sent as each reply comes (pipelined)."""
    c = Conn(port)
    open(gate + ".connected", "w").close()
    deadline = time.time() + 30
    while not os.path.exists(gate + ".go"):
        check(time.time() < deadline, "no go signal")
        time.sleep(0.01)
    sent = 0
    for i in range(count):
        while sent < min(count, i + depth):
            c.send(p.request(verbs[sent % len(verbs)], sent))
            sent += 1
        read_reply(p, c)
        if pause:
            time.sleep(pause)
    c.close()


def burst(p, port, conns, count, verb, gate):
    """`count` rounds of one request on each of `conns` connections, sent at once (a server's
    event loop finds several ready in a turn), every reply read before the next round."""
    cs = [Conn(port) for _ in range(conns)]
    open(gate + ".connected", "w").close()
    deadline = time.time() + 30
    while not os.path.exists(gate + ".go"):
        check(time.time() < deadline, "no go signal")
        time.sleep(0.01)
    for i in range(count):
        for k, c in enumerate(cs):
            c.send(p.request(verb, i * conns + k))
        for c in cs:
            read_reply(p, c)
    for c in cs:
        c.close()


def hold(p, port, conns, verb, gate):
    """Opens `conns` connections, each answered once, and holds them open until gate.go."""
    cs = []
    for i in range(conns):
        c = Conn(port)
        c.send(p.request(verb, i))
        read_reply(p, c)
        cs.append(c)
    open(gate + ".ready", "w").close()
    deadline = time.time() + 30
    while not os.path.exists(gate + ".go"):
        check(time.time() < deadline, "no go signal")
        time.sleep(0.01)
    for c in cs:
        c.close()


def locks(p, port, free):
    """A section taken at `set` and given at `get`, one way: a second connection's `set` waits
    for the first's `get`, or for LOCK_WAIT_MS where none comes; with `free` (--no-locks) it
    does not wait at all."""
    a, b = Conn(port), Conn(port)
    a.send(p.request("set", 0))
    read_reply(p, a)
    t0 = time.time()
    b.send(p.request("set", 1))
    if free:
        read_reply(p, b)
        check(time.time() - t0 < 0.2, f"a free set waited {time.time() - t0:.2f} s")
        return
    b.s.settimeout(0.3)
    try:
        b.fill()
        raise Fail("the second set was answered while the first held the section")
    except socket.timeout:
        pass
    b.s.settimeout(10)
    a.send(p.request("get", 0))
    read_reply(p, a)
    read_reply(p, b)
    waited = time.time() - t0
    check(waited < 0.8, f"the second set waited {waited:.2f} s after the first's get gave the section")
    # b holds it now and never gives it: a's next set waits out LOCK_WAIT_MS (1 s), no more
    t0 = time.time()
    a.send(p.request("set", 2))
    read_reply(p, a)
    waited = time.time() - t0
    check(0.9 <= waited < 3, f"a set behind a section never given waited {waited:.2f} s, want about 1")
    a.close()
    b.close()


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(d))
    return out


def strace_counts(path):
    calls = {}
    with open(path) as f:
        for ln in f:
            parts = ln.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3])
    return calls


def counts(path, count, expected):
    calls = strace_counts(path)
    check(calls, f"no strace summary in {path}")
    print("    " + "  ".join(f"{k}={calls[k] / count:.2f}" for k in sorted(calls)))
    for item in expected:
        # CALL=RATE: that many per request; CALL<=RATE: at most that many
        name, _, rate = item.partition("=")
        at_most = name.endswith("<")
        name = name.rstrip("<")
        want = float(rate) * count
        got = calls.get(name, 0)
        # Attaching interrupts the calls the threads were blocked in, which
        # strace may count once more each; a few calls of slack, not more.
        check(got - want <= 4 + 0.03 * want and (at_most or want - got <= 4 + 0.03 * want),
              f"{name}: {got} calls for {count} requests ({got / count:.2f} per request), "
              f"want {'at most ' if at_most else ''}{float(rate):.2f}")


def keyed(port, pairs):
    """Each PATH=SIZE: three GETs of PATH, each answered with SIZE bytes on the wire
    (the size of the key the path names, not a sample)."""
    c = Conn(port)
    for pair in pairs:
        path, _, size = pair.rpartition("=")
        for _ in range(3):
            c.send(Http.req("GET", path))
            raw = read_reply(Http, c)
            check(len(raw) == int(size), f"GET {path}: {len(raw)} bytes, want {size}")
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["check", "serial", "burst", "hold", "children", "counts", "keyed", "locks"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("--proto", choices=sorted(PROTOS))
    ap.add_argument("--port", type=int)
    ap.add_argument("--sizes", action="append", default=[])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--verbs", default="")
    ap.add_argument("--gate")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--depth", type=int, default=1)
    a = ap.parse_intermixed_args()
    try:
        if a.mode == "children":
            print(" ".join(str(x) for x in children(int(a.args[0]))))
        elif a.mode == "counts":
            counts(a.args[0], a.count, a.args[1:])
        elif a.mode == "locks":
            locks(PROTOS[a.proto], a.port, a.args == ["free"])
        elif a.mode == "keyed":
            keyed(a.port, a.args)
        elif a.mode == "burst":
            burst(PROTOS[a.proto], a.port, a.conns, a.count, a.verbs, a.gate)
        elif a.mode == "hold":
            hold(PROTOS[a.proto], a.port, a.conns, a.verbs, a.gate)
        elif a.mode == "serial":
            serial(PROTOS[a.proto], a.port, a.count, a.verbs.split(","), a.gate, a.pause, a.depth)
        else:
            sizes = {}
            for s in a.sizes:
                verb, _, vals = s.partition("=")
                sizes[verb] = [int(v) for v in vals.split(",")]
            {"memcached": check_memcached, "resp": check_resp, "http": check_http, "pg": check_pg}[a.proto](
                a.port, sizes)
    except (Fail, OSError) as e:
        print(f"client: {a.proto or ''} {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
