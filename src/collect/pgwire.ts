import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import type { Workload } from '../model/index.js';
import type { LoadResult } from './loadgen.js';
import { runPgbench } from './pgbench.js';

/** The request type of a connection's start-up message (protocol 3.0). */
export const STARTUP_OP = 'startup';

/** What one kind of request (a statement kind, or `startup`) came to on the wire. */
interface Tally {
  count: number;
  reqBytes: number;
  sizes: Map<number, number>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const PROTOCOL_3 = 196608;

/** A request awaiting its reply: its kind (null: not tallied), its bytes, and whether its reply
 *  is one untyped byte (the answer to an SSL or GSS encryption request). */
interface Pending {
  kind: string | null;
  bytes: number;
  oneByte: boolean;
}

/** Reads the PostgreSQL v3 messages of one connection, both ways, and tallies each request's
 *  reply: a simple query's is every message up to and including ReadyForQuery, as is the
 *  start-up message's. Kinds and sizes only: no text of a statement or reply is kept. */
export class PgWireTally {
  readonly kinds = new Map<string, Tally>();
  private fromClient = Buffer.alloc(0);
  private fromServer = Buffer.alloc(0);
  private started = false;
  private readonly pending: Pending[] = [];
  private reply = 0;

  client(d: Buffer): void {
    this.fromClient = Buffer.concat([this.fromClient, d]);
    for (;;) {
      const b = this.fromClient;
      if (!this.started) {
        if (b.length < 8) return;
        const len = b.readInt32BE(0);
        if (b.length < len) return;
        const code = b.readInt32BE(4);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST)
          this.pending.push({ kind: null, bytes: len, oneByte: true });
        else {
          this.started = true;
          if (code === PROTOCOL_3) this.pending.push({ kind: STARTUP_OP, bytes: len, oneByte: false });
        }
        this.fromClient = b.subarray(len);
        continue;
      }
      if (b.length < 5) return;
      const len = b.readInt32BE(1) + 1;
      if (b.length < len) return;
      if (b[0] === 0x51 /* Q */) {
        const kind = /^[\s(]*([A-Za-z]+)/
          .exec(b.toString('latin1', 5, Math.min(len, 69)))?.[1]
          ?.toLowerCase();
        this.pending.push({ kind: kind ?? null, bytes: len, oneByte: false });
      }
      this.fromClient = b.subarray(len);
    }
  }

  server(d: Buffer): void {
    this.fromServer = Buffer.concat([this.fromServer, d]);
    for (;;) {
      const b = this.fromServer;
      const head = this.pending[0];
      if (head?.oneByte) {
        if (b.length < 1) return;
        this.pending.shift();
        this.fromServer = b.subarray(1);
        continue;
      }
      if (b.length < 5) return;
      const len = b.readInt32BE(1) + 1;
      if (b.length < len) return;
      this.reply += len;
      if (b[0] === 0x5a /* Z: ReadyForQuery */ && head) {
        this.pending.shift();
        if (head.kind) {
          let t = this.kinds.get(head.kind);
          if (!t) this.kinds.set(head.kind, (t = { count: 0, reqBytes: 0, sizes: new Map() }));
          t.count++;
          t.reqBytes += head.bytes;
          t.sizes.set(this.reply, (t.sizes.get(this.reply) ?? 0) + 1);
        }
        this.reply = 0;
      }
      this.fromServer = b.subarray(len);
    }
  }
}

/** Whether a PostgreSQL server on 127.0.0.1:port takes connections: it answers a start-up with
 *  anything but "the database system is starting up" (SQLSTATE 57P03). Its port opens before
 *  it has recovered (under Valgrind, seconds before). */
export function pgReady(port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on('error', () => done(false));
    s.on('close', () => done(false));
    s.on('connect', () => {
      const params = Buffer.from('user\0postgres\0database\0postgres\0\0', 'latin1');
      const head = Buffer.alloc(8);
      head.writeInt32BE(8 + params.length, 0);
      head.writeInt32BE(PROTOCOL_3, 4);
      s.write(Buffer.concat([head, params]));
    });
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length < 5) return;
      if (got[0] !== 0x45 /* E */) {
        s.write(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
        return done(true);
      }
      const len = got.readInt32BE(1) + 1;
      if (got.length < len) return;
      done(!got.subarray(5, len).toString('latin1').includes('\0C57P03\0'));
    });
  });
}

/** The connections' tallies as twin-load's per-op figures. */
export function tallyOps(tallies: PgWireTally[]): LoadResult['ops'] {
  const all = new Map<string, Tally>();
  for (const t of tallies)
    for (const [k, v] of t.kinds) {
      let a = all.get(k);
      if (!a) all.set(k, (a = { count: 0, reqBytes: 0, sizes: new Map() }));
      a.count += v.count;
      a.reqBytes += v.reqBytes;
      for (const [s, n] of v.sizes) a.sizes.set(s, (a.sizes.get(s) ?? 0) + n);
    }
  return [...all].map(([op, a]) => {
    const sizes = [...a.sizes].sort((x, y) => x[0] - y[0]);
    return {
      op,
      count: a.count,
      req_bytes: a.reqBytes,
      resp_bytes: sizes.reduce((s, [size, n]) => s + size * n, 0),
      resp_sizes: sizes,
    };
  });
}

/** A run of the workload's pgbench through a relay that tallies each statement kind's replies
 *  (and the start-up's): the request types' sizes, which pgbench itself does not count. Short and
 *  apart from the measured runs, since the relay adds a hop to each statement's latency. */
export async function recordReplies(
  w: Workload,
  port: number,
  rate: number,
  seconds: number,
): Promise<LoadResult> {
  const tallies: PgWireTally[] = [];
  const open = new Set<Socket>();
  const relay = createServer((client) => {
    const t = new PgWireTally();
    tallies.push(t);
    const up = createConnection({ host: '127.0.0.1', port });
    open.add(client).add(up);
    client.on('data', (d) => (t.client(d), up.write(d)));
    up.on('data', (d) => (t.server(d), client.write(d)));
    const end = () => (client.destroy(), up.destroy(), open.delete(client), open.delete(up));
    for (const s of [client, up]) s.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  try {
    const r = await runPgbench(w, (relay.address() as AddressInfo).port, {
      rate,
      duration: seconds,
      warmup: 0,
    });
    const ops = tallyOps(tallies);
    const sum = (f: (o: LoadResult['ops'][number]) => number) => ops.reduce((a, o) => a + f(o), 0);
    return { ...r, ops, bytes: { sent: sum((o) => o.req_bytes), received: sum((o) => o.resp_bytes) } };
  } finally {
    for (const s of open) s.destroy();
    await new Promise((resolve) => relay.close(resolve));
  }
}
