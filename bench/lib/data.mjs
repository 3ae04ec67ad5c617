// Deterministic workload: documents of a "bills" collection and the change stream over them,
// as JSON text frames exactly as the server sends them over WebSocket (docs/protocol.md,
// Stream messages).
import { rng } from './common.mjs';

const STATUSES = ['unpaid', 'paid', 'void'];

export function makeFields(r, i) {
  return {
    status: STATUSES[Math.floor(r() * 2.2)],
    total: Math.round(r() * 1_000_000) / 100,
    region: `r${Math.floor(r() * 20)}`,
    customer_id: `c${Math.floor(r() * 2000)}`,
    title: `bill number ${i} for services`,
    lines: 1 + Math.floor(r() * 9),
  };
}

export const docId = (i) => `d${String(i).padStart(6, '0')}`;

/** `changes` change frames over `docs` documents: first one insert per doc, then updates of
 *  random docs (full document after the change, as on the wire). */
export function makeChangeFrames({ docs, changes, seed = 7 }) {
  const r = rng(seed);
  const current = [];
  const frames = new Array(changes);
  for (let seq = 1; seq <= changes; seq++) {
    let i;
    let op;
    let fields;
    if (seq <= docs) {
      i = seq - 1;
      op = 'insert';
      fields = makeFields(r, i);
      current[i] = fields;
    } else {
      i = Math.floor(r() * docs);
      op = 'update';
      const f = { ...current[i] };
      const what = r();
      if (what < 0.4) f.status = STATUSES[Math.floor(r() * 2.2)];
      else if (what < 0.8) f.total = Math.round(r() * 1_000_000) / 100;
      else {
        f.status = STATUSES[Math.floor(r() * 2.2)];
        f.total = Math.round(r() * 1_000_000) / 100;
        f.lines = 1 + Math.floor(r() * 9);
      }
      current[i] = f;
      fields = f;
    }
    frames[seq - 1] = JSON.stringify({ type: 'change', seq, collection: 'bills', id: docId(i), op, version: seq, fields, origin: null });
  }
  return frames;
}

/** `n` documents as the server stores them. */
export function makeDocs(n, seed = 11) {
  const r = rng(seed);
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = { collection: 'bills', id: docId(i), version: i + 1, fields: makeFields(r, i) };
  return out;
}

export const QUERY = { collection: 'bills', where: 'status=eq.unpaid', orderBy: 'total.desc', limit: 50 };
export const AGGREGATE = { collection: 'bills', groupBy: 'region', sum: 'total' };
