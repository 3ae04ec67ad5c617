// Layer: tests/chaos. The nemesis' network half: a TCP proxy (node:net) between every chaos
// client and syncline-server. It parses just enough HTTP/1.1 to know request boundaries, so it
// can
//   - drop the response to a POST /v1/mutations (close both sockets when the server starts to
//     answer: the batch is committed but the client never hears it, so it must resend and the
//     server must answer `duplicate`),
//   - duplicate a POST /v1/mutations (replay the same bytes on a fresh connection, sometimes
//     delayed: a late, duplicated old request must never apply anything twice),
//   - cut SSE and WebSocket streams after a random number of bytes (mid-frame),
//   - cut any connection at any time (cutRandom), and refuse everything while the server is down.
// Every decision comes from the injected seeded rng.
import net from 'node:net';

export class ChaosProxy {
  constructor({ targetPort, rng, log = () => {} }) {
    this.targetPort = targetPort;
    this.r = rng;
    this.log = log;
    this.conns = new Set();
    this.faults = true;
    this.p = { dropResponse: 0.08, duplicateRequest: 0.08, streamCut: 0.3, streamCutMaxBytes: 60000 };
    this.stats = { connections: 0, dropped_responses: 0, duplicated_requests: 0, duplicate_replays_applied_first: 0, stream_cuts_mid_frame: 0, connections_cut: 0, refused_upstream: 0, mutation_posts: 0, mutation_frames: 0 };
    this.replays = new Set();
  }

  listen(port = 0) {
    this.server = net.createServer((c) => this.#accept(c));
    return new Promise((res) => this.server.listen(port, '127.0.0.1', () => res((this.port = this.server.address().port))));
  }

  async close() {
    for (const c of this.conns) this.#kill(c);
    for (const s of this.replays) s.destroy();
    await new Promise((res) => this.server.close(() => res()));
  }

  /** Cuts up to n random live connections (both directions, no goodbye). */
  cutRandom(n = 1) {
    const all = [...this.conns];
    let cut = 0;
    for (let i = 0; i < n && all.length; i++) {
      const k = Math.floor(this.r.next() * all.length);
      this.#kill(all.splice(k, 1)[0]);
      cut++;
    }
    this.stats.connections_cut += cut;
    return cut;
  }

  cutAll() {
    const n = this.conns.size;
    for (const c of [...this.conns]) this.#kill(c);
    return n;
  }

  #kill(conn) {
    if (conn.dead) return;
    conn.dead = true;
    this.conns.delete(conn);
    conn.c.destroy();
    conn.s.destroy();
  }

  #accept(c) {
    this.stats.connections++;
    const s = net.connect(this.targetPort, '127.0.0.1');
    const conn = { c, s, dead: false, mode: 'http', buf: Buffer.alloc(0), upReady: false, pendingUp: [], dropNext: false, budget: null, sent: 0 };
    this.conns.add(conn);
    c.setNoDelay(true);
    s.setNoDelay(true);
    s.on('connect', () => {
      conn.upReady = true;
      for (const b of conn.pendingUp) s.write(b);
      conn.pendingUp = [];
    });
    s.on('error', (e) => {
      if (!conn.upReady) this.stats.refused_upstream++;
      this.#kill(conn);
    });
    c.on('error', () => this.#kill(conn));
    c.on('close', () => this.#kill(conn));
    s.on('close', () => this.#kill(conn));
    c.on('data', (d) => this.#fromClient(conn, d));
    s.on('data', (d) => this.#fromServer(conn, d));
  }

  #up(conn, b) {
    if (conn.dead) return;
    if (conn.upReady) conn.s.write(b);
    else conn.pendingUp.push(b);
  }

  #fromClient(conn, d) {
    if (conn.mode === 'raw') return this.#up(conn, d);
    if (conn.mode === 'ws') return this.#wsFromClient(conn, d);
    conn.buf = Buffer.concat([conn.buf, d]);
    for (;;) {
      const end = conn.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = conn.buf.subarray(0, end).toString('latin1');
      const lines = head.split('\r\n');
      const [method, path] = lines[0].split(' ');
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      if (headers['transfer-encoding'] || headers.upgrade) {
        // WebSocket upgrade (or a chunked body we do not parse): raw pipe from here on.
        if (headers.upgrade && this.faults && this.r.chance(this.p.streamCut)) conn.budget = this.r.int(0, this.p.streamCutMaxBytes);
        conn.mode = headers.upgrade ? 'ws' : 'raw';
        conn.ws = !!headers.upgrade;
        conn.sbuf = Buffer.alloc(0);
        conn.shead = conn.ws; // the 101 response head comes first
        const reqBytes = conn.buf.subarray(0, end + 4);
        const rest = conn.buf.subarray(end + 4);
        conn.buf = Buffer.alloc(0);
        this.#up(conn, reqBytes);
        if (rest.length) this.#fromClient(conn, rest);
        return;
      }
      const len = Number(headers['content-length'] ?? 0);
      if (conn.buf.length < end + 4 + len) return;
      const req = conn.buf.subarray(0, end + 4 + len);
      conn.buf = conn.buf.subarray(end + 4 + len);
      const p = (path ?? '').split('?')[0];
      if (method === 'GET' && p === '/v1/events' && this.faults && this.r.chance(this.p.streamCut)) {
        conn.budget = this.r.int(0, this.p.streamCutMaxBytes);
      }
      if (method === 'POST' && p === '/v1/mutations') {
        this.stats.mutation_posts++;
        if (this.faults && this.r.chance(this.p.duplicateRequest)) this.#replay(Buffer.from(req), this.r.chance(0.5) ? 0 : this.r.int(1, 1500));
        if (this.faults && this.r.chance(this.p.dropResponse)) conn.dropNext = true;
      }
      this.#up(conn, req);
    }
  }

  #fromServer(conn, d) {
    if (conn.dead) return;
    if (conn.ws) return this.#wsFromServer(conn, d);
    if (conn.dropNext) {
      // The server committed and started answering: the client never hears it.
      this.stats.dropped_responses++;
      this.#kill(conn);
      return;
    }
    this.#down(conn, d);
  }

  /** Forwards server bytes to the client, cutting the stream once its byte budget is spent. */
  #down(conn, d) {
    if (conn.dead || conn.budget === -1) return;
    if (conn.budget !== null && this.faults) {
      const left = conn.budget - conn.sent;
      if (d.length >= left) {
        if (left > 0) conn.c.write(d.subarray(0, left));
        this.stats.stream_cuts_mid_frame++;
        // Let the partial bytes reach the client before the reset.
        setImmediate(() => this.#kill(conn));
        conn.budget = -1;
        return;
      }
    }
    conn.sent += d.length;
    conn.c.write(d);
  }

  // ---- WebSocket frames (RFC 6455). Client frames are masked; server frames are not.
  static frame(buf) {
    if (buf.length < 2) return null;
    const b0 = buf[0];
    const b1 = buf[1];
    let len = b1 & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length < 4) return null;
      len = buf.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (buf.length < 10) return null;
      len = Number(buf.readBigUInt64BE(2));
      off = 10;
    }
    let mask = null;
    if (b1 & 0x80) {
      if (buf.length < off + 4) return null;
      mask = buf.subarray(off, off + 4);
      off += 4;
    }
    if (buf.length < off + len) return null;
    const opcode = b0 & 0x0f;
    const plain = opcode === 1 && (b0 & 0x80) && !(b0 & 0x40); // final, uncompressed text frame
    let prefix = '';
    if (plain) {
      const n = Math.min(len, 24);
      const bytes = Buffer.alloc(n);
      for (let i = 0; i < n; i++) bytes[i] = buf[off + i] ^ (mask ? mask[i & 3] : 0);
      prefix = bytes.toString('latin1');
    }
    return { total: off + len, prefix };
  }

  #wsFromClient(conn, d) {
    conn.buf = Buffer.concat([conn.buf, d]);
    for (;;) {
      const f = ChaosProxy.frame(conn.buf);
      if (!f) return;
      const bytes = conn.buf.subarray(0, f.total);
      conn.buf = conn.buf.subarray(f.total);
      this.#up(conn, Buffer.from(bytes));
      if (f.prefix.startsWith('{"type":"mutate"')) {
        this.stats.mutation_frames++;
        // The same masked frame again on the same socket: the server sees the batch twice.
        if (this.faults && this.r.chance(this.p.duplicateRequest)) {
          this.stats.duplicated_requests++;
          this.#up(conn, Buffer.from(bytes));
        }
        if (this.faults && this.r.chance(this.p.dropResponse)) conn.dropResults = (conn.dropResults ?? 0) + 1;
      }
    }
  }

  #wsFromServer(conn, d) {
    conn.sbuf = Buffer.concat([conn.sbuf, d]);
    if (conn.shead) {
      const end = conn.sbuf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = Buffer.from(conn.sbuf.subarray(0, end + 4));
      const rest = Buffer.from(conn.sbuf.subarray(end + 4));
      conn.sbuf = Buffer.alloc(0);
      conn.shead = false;
      this.#down(conn, head);
      if (!head.toString('latin1').startsWith('HTTP/1.1 101')) {
        conn.ws = false; // refused upgrade: plain bytes from here on
        if (rest.length) this.#down(conn, rest);
        return;
      }
      conn.sbuf = rest;
    }
    for (;;) {
      const f = ChaosProxy.frame(conn.sbuf);
      if (!f) return;
      const bytes = Buffer.from(conn.sbuf.subarray(0, f.total));
      conn.sbuf = conn.sbuf.subarray(f.total);
      if (conn.dropResults && f.prefix.startsWith('{"type":"results"')) {
        // The batch is committed; the client never hears it.
        this.stats.dropped_responses++;
        this.#kill(conn);
        return;
      }
      this.#down(conn, bytes);
      if (conn.dead) return;
    }
  }

  #replay(bytes, delay) {
    this.stats.duplicated_requests++;
    setTimeout(() => {
      const s = net.connect(this.targetPort, '127.0.0.1');
      this.replays.add(s);
      let text = '';
      const done = () => {
        this.replays.delete(s);
        s.destroy();
      };
      s.on('connect', () => s.write(bytes));
      s.on('data', (d) => {
        text += d.toString('latin1');
        const i = text.indexOf('\r\n\r\n');
        if (i >= 0) {
          const m = /content-length:\s*(\d+)/i.exec(text.slice(0, i));
          if (m && text.length >= i + 4 + Number(m[1])) {
            if (text.includes('"status":"applied"')) this.stats.duplicate_replays_applied_first++;
            done();
          }
        }
      });
      s.on('error', done);
      s.on('close', done);
      setTimeout(done, 10000).unref();
    }, delay);
  }
}
