// Benchmark 1 (Node): apply remote change messages, as JSON text, into a replica while one live
// query (where + orderBy + limit 50) and one grouped aggregate stay current.
// Peers, same frames, same batches: syncline (SyncEngine.receiveFrames), TinyBase (store +
// queries), RxDB (memory storage, event-reduce query, aggregate kept from the change stream),
// a plain-JS baseline that refilters/re-sorts/re-aggregates on every change (what hand-written
// realtime hooks do), and JSON.parse alone as the floor.
// Results are read once per batch (= one render per batch of 1,000 messages).
import { loadSyncline, SyncEngine } from '../../js-wrapper/dist/internal.js';
import { createStore, createQueries } from 'tinybase';
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { fmt, gc, now, ratio, table, target } from '../lib/common.mjs';
import { AGGREGATE, makeChangeFrames, QUERY } from '../lib/data.mjs';

// What every peer must agree on at the end: the totals of the top 50 in order (documents with
// equal totals may be ordered differently by each peer), the group count and the grand totals.
function checkOf(topTotals, groups) {
  let sum = 0;
  let count = 0;
  for (const g of Object.values(groups)) {
    sum += g.sum;
    count += g.count;
  }
  return { top: topTotals.join(','), topLen: topTotals.length, groups: Object.keys(groups).length, count, sum: Math.round(sum * 100) / 100 };
}

// ---------------------------------------------------------------- floor
// The bytes-in floor: each frame's UTF-8 bytes (as a socket delivers them) decoded and parsed.
const utf8In = new TextDecoder();
function runFloor(frameBytes) {
  const t0 = now();
  let n = 0;
  for (let i = 0; i < frameBytes.length; i++) n += JSON.parse(utf8In.decode(frameBytes[i])).seq > 0 ? 1 : 0;
  const ms = now() - t0;
  if (n !== frameBytes.length) throw new Error('floor: parse count mismatch');
  return { ms, processed: frameBytes.length };
}

// ---------------------------------------------------------------- syncline
// `detail`: per-document before/after in each reply (setChangeDetail), as the client runs while a
// document listener is registered; without one it runs with detail off.
async function runSyncline(frames, batch, detail = true) {
  const mod = await loadSyncline();
  const e = SyncEngine.create(mod, { clientId: 'bench', collections: ['bills'] });
  e.setChangeDetail(detail);
  const q = e.addQuery(QUERY);
  const a = e.addAggregate(AGGREGATE);
  let top = e.queryResult(q).docs;
  let agg = e.aggregateResult(a);
  const t0 = now();
  for (let i = 0; i < frames.length; i += batch) {
    const out = e.receiveFrames(frames.slice(i, i + batch), 0);
    if (out.errors && out.errors.length) throw new Error(`syncline: ${JSON.stringify(out.errors[0])}`);
    if (out.queries.includes(q)) top = e.queryResult(q).docs;
    if (out.aggregates.includes(a)) agg = e.aggregateResult(a);
  }
  const ms = now() - t0;
  const res = { ms, processed: frames.length, check: checkOf(top.map((d) => d.fields.total), agg.groups) };
  e.dispose();
  return res;
}

// ---------------------------------------------------------------- TinyBase
function runTinyBase(frames, batch) {
  const store = createStore();
  const queries = createQueries(store);
  const versions = new Map();
  queries.setQueryDefinition('unpaid', 'bills', ({ select, where }) => {
    for (const c of ['status', 'total', 'region', 'customer_id', 'title', 'lines']) select(c);
    where('status', 'unpaid');
  });
  queries.setQueryDefinition('byRegion', 'bills', ({ select, group }) => {
    select('region');
    select('total');
    select('total').as('n');
    group('total', 'sum');
    group('n', 'count');
  });
  let top = [];
  let groups = {};
  const read = () => {
    const ids = queries.getResultSortedRowIds('unpaid', 'total', true, 0, 50);
    top = ids.map((id) => ({ id, ...queries.getResultRow('unpaid', id) }));
    const t = queries.getResultTable('byRegion');
    groups = {};
    for (const row of Object.values(t)) groups[JSON.stringify(row.region)] = { count: row.n, sum: row.total };
  };
  const t0 = now();
  for (let i = 0; i < frames.length; i += batch) {
    const end = Math.min(frames.length, i + batch);
    store.transaction(() => {
      for (let k = i; k < end; k++) {
        const m = JSON.parse(frames[k]);
        if ((versions.get(m.id) ?? 0) >= m.seq) continue;
        versions.set(m.id, m.seq);
        if (m.op === 'delete') store.delRow('bills', m.id);
        else store.setRow('bills', m.id, m.fields);
      }
    });
    read();
  }
  const ms = now() - t0;
  return { ms, processed: frames.length, check: checkOf(top.map((d) => d.total), groups) };
}

// ---------------------------------------------------------------- RxDB (memory storage)
let rxCounter = 0;
async function runRxdb(frames, batch) {
  const db = await createRxDatabase({ name: `benchdb${rxCounter++}${Date.now()}`, storage: getRxStorageMemory(), multiInstance: false, eventReduce: true });
  await db.addCollections({
    bills: {
      schema: {
        version: 0,
        primaryKey: 'id',
        type: 'object',
        properties: {
          id: { type: 'string', maxLength: 32 },
          status: { type: 'string', maxLength: 16 },
          total: { type: 'number', minimum: 0, maximum: 100000000, multipleOf: 0.01 },
          region: { type: 'string' },
          customer_id: { type: 'string' },
          title: { type: 'string' },
          lines: { type: 'number' },
          v: { type: 'number' },
        },
        required: ['id', 'status', 'total'],
        indexes: [['status', 'total']],
      },
    },
  });
  const col = db.bills;
  const versions = new Map();
  const groups = {};
  const bump = (doc, sign) => {
    if (!doc || doc._deleted) return;
    const k = JSON.stringify(doc.region);
    const g = (groups[k] ??= { count: 0, sum: 0 });
    g.count += sign;
    g.sum += sign * doc.total;
  };
  const sub = col.$.subscribe((ev) => {
    bump(ev.previousDocumentData, -1);
    if (ev.operation !== 'DELETE') bump(ev.documentData, 1);
  });
  const query = col.find({ selector: { status: 'unpaid' }, sort: [{ total: 'desc' }], limit: 50 });
  let top = await query.exec();
  const t0 = now();
  for (let i = 0; i < frames.length; i += batch) {
    const end = Math.min(frames.length, i + batch);
    const upserts = new Map();
    const deletes = [];
    for (let k = i; k < end; k++) {
      const m = JSON.parse(frames[k]);
      if ((versions.get(m.id) ?? 0) >= m.seq) continue;
      versions.set(m.id, m.seq);
      if (m.op === 'delete') deletes.push(m.id);
      else upserts.set(m.id, { id: m.id, v: m.seq, ...m.fields });
    }
    if (upserts.size) await col.bulkUpsert([...upserts.values()]);
    if (deletes.length) await col.bulkRemove(deletes);
    top = await query.exec();
  }
  const ms = now() - t0;
  sub.unsubscribe();
  const res = { ms, processed: frames.length, check: checkOf(top.map((d) => d.total), groups) };
  await db.close();
  return res;
}

// ---------------------------------------------------------------- plain JS
// A hand-written hook: a Map of documents; on every change message it rebuilds the filtered,
// sorted, limited list and the grouped totals from scratch. Capped in time (it is O(N) per
// change); its rate is measured on the prefix it got through.
function runPlainJs(frames, capMs) {
  const docs = new Map();
  let top = [];
  let groups = {};
  const t0 = now();
  let processed = 0;
  for (let k = 0; k < frames.length; k++) {
    const m = JSON.parse(frames[k]);
    const prev = docs.get(m.id);
    if (prev && prev.version >= m.seq) continue;
    if (m.op === 'delete') docs.delete(m.id);
    else docs.set(m.id, { id: m.id, version: m.seq, fields: m.fields });
    const all = [...docs.values()];
    top = all.filter((d) => d.fields.status === 'unpaid').sort((a, b) => b.fields.total - a.fields.total).slice(0, 50);
    groups = {};
    for (const d of all) {
      const key = JSON.stringify(d.fields.region);
      const g = (groups[key] ??= { count: 0, sum: 0 });
      g.count += 1;
      g.sum += d.fields.total;
    }
    processed = k + 1;
    if ((k & 63) === 0 && now() - t0 > capMs) break;
  }
  const ms = now() - t0;
  return { ms, processed, check: processed === frames.length ? checkOf(top.map((d) => d.fields.total), groups) : null };
}

async function best(fn, reps) {
  let bestRes = null;
  for (let r = 0; r < reps; r++) {
    gc();
    const res = await fn();
    if (!bestRes || res.ms < bestRes.ms) bestRes = res;
  }
  return bestRes;
}

export async function run({ quick }) {
  const docs = quick ? 2000 : 10_000;
  const changes = quick ? 20_000 : 100_000;
  const batch = 1000;
  const reps = quick ? 1 : 3;
  const frames = makeChangeFrames({ docs, changes });
  const frameBytes = frames.map((f) => new TextEncoder().encode(f));
  const bytes = frameBytes.reduce((s, b) => s + b.length, 0);

  // Warm-up on a prefix so the JIT state is comparable for every peer.
  const warm = frames.slice(0, Math.min(5000, frames.length));
  runFloor(frameBytes.slice(0, warm.length));
  await runSyncline(warm, batch);
  await runSyncline(warm, batch, false);
  runTinyBase(warm, batch);
  await runRxdb(warm.slice(0, 2000), batch);

  const results = {};
  results.floor = await best(() => runFloor(frameBytes), reps);
  results.syncline = await best(() => runSyncline(frames, batch), reps);
  results.synclineLean = await best(() => runSyncline(frames, batch, false), reps);
  results.tinybase = await best(() => runTinyBase(frames, batch), reps);
  results.rxdb = await best(() => runRxdb(frames, batch), quick ? 1 : 2);
  gc();
  results.plain = runPlainJs(frames, quick ? 3000 : 15000);

  const rate = (r) => (r.processed / r.ms) * 1000;
  const names = { floor: 'TextDecoder + JSON.parse of the bytes (floor)', syncline: 'syncline (wasm, receiveFrames x1000), change detail on', synclineLean: 'syncline, change detail off (no document listener)', tinybase: 'TinyBase', rxdb: 'RxDB (memory storage)', plain: 'plain JS (refilter every change)' };
  const sRate = rate(results.syncline);
  const rows = Object.entries(results).map(([k, r]) => [
    names[k],
    r.processed === changes ? fmt(r.ms) : `${fmt(r.ms)} (${fmt(r.processed)} msgs, time cap)`,
    rate(r),
    ((r.ms * 1000) / r.processed).toFixed(2),
    k === 'syncline' ? '1.00x' : ratio(sRate, rate(r)),
  ]);
  const peers = ['tinybase', 'rxdb', 'plain'];
  const bestPeer = peers.reduce((b, k) => (rate(results[k]) > rate(results[b]) ? k : b), peers[0]);
  // Same work as the peers (query + aggregate; no per-document before/after): detail off.
  const leanRate = rate(results.synclineLean);
  const vsPeer = leanRate / rate(results[bestPeer]);
  const vsPeerDetail = sRate / rate(results[bestPeer]);
  const vsFloor = sRate / rate(results.floor);

  // Cross-check: every peer that finished must agree on the query and the aggregate.
  const checks = Object.entries(results).filter(([, r]) => r.check).map(([k, r]) => [k, JSON.stringify(r.check)]);
  const agree = new Set(checks.map(([, c]) => c)).size === 1;
  if (!agree) throw new Error(`apply: peers disagree on the final state:\n${checks.map(([k, c]) => `${k}: ${c}`).join('\n')}`);

  return {
    id: 'apply',
    title: '1. Apply remote changes (Node)',
    setup: `${fmt(changes)} change messages (${fmt(docs)} inserts, then updates of random docs) over ${fmt(docs)} documents, ${(bytes / 2 ** 20).toFixed(1)} MiB of JSON text; batches of ${batch}; live query \`${QUERY.where}\` order \`${QUERY.orderBy}\` limit ${QUERY.limit}; aggregate group by \`${AGGREGATE.groupBy}\` sum \`${AGGREGATE.sum}\` + count; results read after every batch. syncline runs with per-document change detail on (as the client does while a document listener is registered) and off; the floor decodes each frame's UTF-8 bytes and parses them. Best of ${reps} runs. All finishing peers end with the same top-50 and group totals (checked).`,
    tables: [{ columns: ['peer', 'time (ms)', 'msgs/s', 'µs/msg', 'syncline (detail on) speed-up'], rows }],
    metrics: { synclineRate: sRate, synclineLeanRate: leanRate, floorRate: rate(results.floor), bestPeer, bestPeerRate: rate(results[bestPeer]), tinybaseRate: rate(results.tinybase), rxdbRate: rate(results.rxdb), plainRate: rate(results.plain) },
    targets: [
      target('Apply: >= 5x the best JS peer (same work: detail off)', vsPeer >= 5, `${fmt(vsPeer, 2)}x ${names[bestPeer]}${vsPeer >= 5 ? '' : ` (short by ${fmt(5 / vsPeer, 2)}x)`}; with detail on ${fmt(vsPeerDetail, 2)}x`),
      target('Apply, detail on: >= 0.5x the bytes-in floor', vsFloor >= 0.5, `${fmt(vsFloor, 3)}x the floor${vsFloor >= 0.5 ? '' : ` (needs ${fmt(0.5 / vsFloor, 1)}x faster)`}`),
    ],
  };
}
