// Layer: tests/chaos. What each Node chaos client's streams delivered, and the check of it
// against the server's log: every client's applied log equals the server's, with no gap and
// no repeat, across stream cuts, server kills and (in cluster mode) failovers to other nodes.
//
// Client side (client.mjs): recordStreams() wraps the WebSocket, EventSource and fetch the
// runtime uses and reports, per stream connection, the cursor it resumed from, the node that
// answered (HAProxy's X-Syncline-Node; none without a balancer), and every change it delivered
// as [seq, digest of the change]; and the seq of every snapshot the runtime loaded.
// Harness side: StreamLedger collects those reports per client incarnation and checks them:
//   - within a connection, changes come in seq order from cursor + 1: for an admin (who may
//     read every change) exactly cursor+1, cursor+2, ... (a skipped seq is a gap, a smaller
//     one a repeat); for a customer (filtered) strictly increasing;
//   - each change equals the log's row at its seq (a customer may get the row as a `delete`
//     when it moved out of their scope);
//   - a connection of the same process resumes from a cursor it had: not below the previous
//     connection's cursor, not above the last seq its streams delivered unless a snapshot
//     (whose seq is recorded) came between. A resume below what was delivered (frames dropped
//     unapplied when a stream failed) is counted, not a fault: the engine skips what it has.
// A process killed with -9 may lose its last reports (sent every 250 ms): only the tail of its
// last connection, which no check spans (a restarted process resumes from its stored cursor).
import { createHash } from 'node:crypto';

const canonical = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((y) => [y, x[y]])) : x));

/** The digest both sides compute of a change message (wire form or log row). */
export function changeDigest(ch) {
  const parts = [ch.seq, ch.collection, ch.id, ch.op, ch.version, ch.op === 'delete' ? {} : (ch.fields ?? {}), ch.origin?.client ?? null, ch.origin?.mid ?? null];
  return createHash('sha1').update(canonical(parts)).digest('hex').slice(0, 16);
}

const cursorOf = (url) => {
  const c = new URL(String(url)).searchParams.get('cursor');
  return c === null ? null : Number(c);
};

/** Installs the recording wrappers on globalThis (before the runtime is imported) and sends
 * batches of records with `report(recs)`. Records: ['o', conn, cursor] a stream opened (asked
 * for), ['n', conn, node] who answered, ['c', conn, seq, digest] a change, ['r', conn, seq] a
 * reset, ['s', seq] a snapshot loaded. */
export function recordStreams(report, { everyMs = 250 } = {}) {
  let recs = [];
  let conns = 0;
  const rec = (r) => recs.push(r);
  const flush = () => {
    if (!recs.length) return;
    const out = recs;
    recs = [];
    report(out);
  };
  setInterval(flush, everyMs).unref();
  const onMessage = (conn, type, data) => {
    if (type !== 'change' && type !== 'reset') return;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return; // the runtime reports what does not parse
    }
    if (type === 'reset') rec(['r', conn, m.seq]);
    else rec(['c', conn, m.seq, changeDigest(m)]);
  };

  const BaseWs = globalThis.WebSocket;
  globalThis.WebSocket = class RecordedWebSocket extends BaseWs {
    constructor(url, ...rest) {
      super(url, ...rest);
      const conn = ++conns;
      rec(['o', conn, cursorOf(url)]);
      this.on?.('upgrade', (res) => rec(['n', conn, res.headers['x-syncline-node'] ?? null]));
      this.addEventListener('message', (ev) => {
        if (typeof ev.data !== 'string' || !ev.data.includes('"type":"')) return;
        const type = /"type":"(change|reset)"/.exec(ev.data)?.[1];
        if (type) onMessage(conn, type, ev.data);
      });
    }
  };

  const BaseEs = globalThis.EventSource;
  globalThis.EventSource = class RecordedEventSource extends BaseEs {
    constructor(url, ...rest) {
      super(url, ...rest);
      const conn = ++conns;
      rec(['o', conn, cursorOf(url)]);
      this.addEventListener('open', () => rec(['n', conn, this.headers?.['x-syncline-node'] ?? null]));
      for (const type of ['change', 'reset']) this.addEventListener(type, (ev) => onMessage(conn, type, ev.data));
    }
  };

  const baseFetch = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const res = await baseFetch(input, init);
    const url = String(input?.url ?? input);
    // The first page of a snapshot names its seq: the cursor the replica moves to.
    if (res.ok && url.includes('/v1/snapshot') && !new URL(url).searchParams.has('after')) {
      try {
        rec(['s', (await res.clone().json()).seq]);
      } catch {
        /* the runtime sees the same failure */
      }
    }
    return res;
  };
  return { flush };
}

export class StreamLedger {
  constructor() {
    this.byIncarnation = new Map(); // `${owner}/${incarnation}` -> { owner, admin, recs: [] }
  }

  add(owner, admin, incarnation, recs) {
    const k = `${owner}/${incarnation}`;
    let e = this.byIncarnation.get(k);
    if (!e) this.byIncarnation.set(k, (e = { owner, admin, incarnation, recs: [] }));
    for (const r of recs) e.recs.push(r);
  }

  /** Checks every record against `log` (the checker's change log, seqs 1..head). Reports at
   * most `perKind` violations of each kind, then how many more there were. */
  check(log, report, { perKind = 8 } = {}) {
    const shown = {};
    const violation = (kind, msg) => {
      shown[kind] = (shown[kind] ?? 0) + 1;
      if (shown[kind] <= perKind) report(msg);
    };
    const rows = new Map(log.map((ch) => [ch.seq, ch]));
    const digests = new Map(log.map((ch) => [ch.seq, changeDigest(ch)]));
    const end = log.length ? log[log.length - 1].seq : 0;
    const leaves = new Map(log.filter((ch) => ch.op === 'update').map((ch) => [ch.seq, changeDigest({ ...ch, op: 'delete', fields: {} })]));
    const f = { incarnations: 0, connections: 0, connections_answered: 0, changes: 0, changes_compared: 0, resumes_on_another_node: 0, nodes: {}, resumed_below_delivered: 0, snapshots: 0, resets: 0, changes_after_reset: 0, gaps: 0, repeats: 0, differing: 0, cursor_faults: 0 };
    for (const e of this.byIncarnation.values()) {
      f.incarnations++;
      const who = `${e.owner} (incarnation ${e.incarnation}, ${e.admin ? 'admin' : 'customer'})`;
      const conns = new Map();
      let prev = null; // the previous connection
      let delivered = null; // the largest seq this process's streams delivered
      let snapshots = []; // snapshot seqs since the previous connection opened
      let reset = false;
      let lastNode = null; // the node that answered the last answered connection
      for (const r of e.recs) {
        if (r[0] === 's') {
          f.snapshots++;
          snapshots.push(r[1]);
          continue;
        }
        if (r[0] === 'o') {
          const [, id, cursor] = r;
          f.connections++;
          if (prev) {
            const top = Math.max(prev.cursor, delivered ?? 0);
            if (cursor < prev.cursor && !reset) {
              f.cursor_faults++;
              violation('cursor', `STREAM ${who}: connection ${id} resumed from cursor ${cursor}, below the previous connection's ${prev.cursor}`);
            } else if (cursor > top && !snapshots.includes(cursor) && !reset) {
              f.cursor_faults++;
              violation('cursor', `STREAM ${who}: connection ${id} resumed from cursor ${cursor}, but its streams delivered up to ${delivered} (previous cursor ${prev.cursor}) and no snapshot at ${cursor} came between (snapshots: ${snapshots.join(',') || 'none'})`);
            }
            if (cursor < (delivered ?? 0)) f.resumed_below_delivered++;
          }
          const c = { id, cursor, last: cursor, node: null, prevNode: lastNode };
          conns.set(id, c);
          prev = c;
          snapshots = [];
          reset = false;
          continue;
        }
        const c = conns.get(r[1]);
        if (!c) continue; // opened before this incarnation's first report (cannot happen) or lost
        if (r[0] === 'n') {
          c.node = r[2];
          f.connections_answered++;
          if (c.node) {
            f.nodes[c.node] = (f.nodes[c.node] ?? 0) + 1;
            if (c.prevNode && c.prevNode !== c.node) f.resumes_on_another_node++;
            lastNode = c.node;
          }
          continue;
        }
        if (r[0] === 'r') {
          f.resets++;
          reset = true;
          c.reset = true;
          continue;
        }
        const [, , seq, digest] = r;
        f.changes++;
        if (c.reset) {
          // The server goes live from its head after a reset; the runtime drops what follows
          // it, takes a snapshot and opens a new stream. Still compared with the log below.
          f.changes_after_reset++;
        } else if (seq <= c.last) {
          f.repeats++;
          violation('repeat', `STREAM ${who}: connection ${c.id} (cursor ${c.cursor}, node ${c.node}) delivered seq ${seq} after ${c.last}: a repeat`);
        } else if (e.admin && seq !== c.last + 1) {
          f.gaps++;
          violation('gap', `STREAM ${who}: connection ${c.id} (cursor ${c.cursor}, node ${c.node}) delivered seq ${seq} after ${c.last}: a gap of ${seq - c.last - 1}`);
        }
        c.last = Math.max(c.last, seq);
        delivered = Math.max(delivered ?? 0, seq);
        // Every change is checked against the log (past the log's end: nothing to compare yet).
        if (seq > end) continue;
        f.changes_compared++;
        if (digest !== digests.get(seq) && (e.admin || digest !== leaves.get(seq))) {
          f.differing++;
          const row = rows.get(seq);
          violation('differing', `STREAM ${who}: connection ${c.id} (node ${c.node}) delivered seq ${seq} unlike the log's ${row ? `${row.op} ${row.collection}/${row.id} v${row.version}` : '(no such seq)'}`);
        }
      }
    }
    for (const [kind, n] of Object.entries(shown)) if (n > perKind) report(`STREAM: ${n - perKind} more ${kind} violation(s) not shown`);
    return f;
  }
}
