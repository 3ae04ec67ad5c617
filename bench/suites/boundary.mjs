// Benchmark 2 (Node): the cost of crossing into wasm, and JSON decoding in wasm vs JSON.parse.
//  - per message: SyncEngine.receiveFrames([one]) x N vs receiveFrames(1,000 at a time);
//  - a near-empty crossing (module._jsonDecodeCount('[1]')) for the fixed cost of one call;
//  - decode: the receive decoder (decode_server_batch, as receiveInput runs it) on the batch's
//    UTF-8 bytes already in the wasm heap (module._decodeBuffer/_decodeServerInput) vs
//    JSON.parse(text) of the same batch. Informative: module._jsonDecodeCount(text) (Embind's
//    copy into the wasm heap + JsonReader building a whole nlohmann::json value); its copy alone
//    is measured by passing the same text behind one invalid leading byte.
import { loadSyncline, SyncEngine } from '../../js-wrapper/dist/internal.js';
import { fmt, gc, now, ratio, target } from '../lib/common.mjs';
import { makeChangeFrames } from '../lib/data.mjs';

function timeBest(fn, reps) {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    fn();
    best = Math.min(best, now() - t0);
  }
  return best;
}

export async function run({ quick }) {
  const mod = await loadSyncline();
  const docs = 10_000;
  const n = quick ? 10_000 : 50_000;
  const frames = makeChangeFrames({ docs, changes: docs + n, seed: 3 });
  const inserts = frames.slice(0, docs);
  const updates = frames.slice(docs);
  const reps = quick ? 2 : 5;

  const fresh = () => {
    const e = SyncEngine.create(mod, { clientId: 'bench', collections: ['bills'] });
    e.receiveFrames(inserts, 0);
    return e;
  };
  // Warm-up both paths.
  {
    const e = fresh();
    for (let i = 0; i < 2000; i++) e.receiveFrames([updates[i]], 0);
    e.receiveFrames(updates.slice(0, 2000), 0);
    e.dispose();
  }
  let oneMs = Infinity;
  let batchMs = Infinity;
  for (let r = 0; r < reps; r++) {
    gc();
    let e = fresh();
    let t0 = now();
    for (let i = 0; i < updates.length; i++) e.receiveFrames([updates[i]], 0);
    oneMs = Math.min(oneMs, now() - t0);
    e.dispose();
    gc();
    e = fresh();
    t0 = now();
    for (let i = 0; i < updates.length; i += 1000) e.receiveFrames(updates.slice(i, i + 1000), 0);
    batchMs = Math.min(batchMs, now() - t0);
    e.dispose();
  }
  const callCount = quick ? 100_000 : 500_000;
  const emptyMs = timeBest(() => {
    for (let i = 0; i < callCount; i++) mod._jsonDecodeCount('[1]');
  }, reps);
  const perOne = (oneMs * 1000) / updates.length;
  const perBatch = (batchMs * 1000) / updates.length;

  // Decoding: the same bytes both ways, several sizes.
  const decodeRows = [];
  let bigRatio = NaN;
  for (const count of quick ? [100, 10_000] : [1, 100, 1_000, 10_000]) {
    const text = '[' + updates.slice(0, count).join(',') + ']';
    const bytes = Buffer.byteLength(text);
    const inner = Math.max(1, Math.round(2_000_000 / bytes));
    if (mod._jsonDecodeCount(text) !== count) throw new Error('wasm decode returned the wrong count');
    if (mod._jsonDecodeCount('x' + text) !== -1) throw new Error('copy-only probe did not fail fast');
    gc();
    const jsMs = timeBest(() => {
      for (let k = 0; k < inner; k++) JSON.parse(text);
    }, reps) / inner;
    const wasmMs = timeBest(() => {
      for (let k = 0; k < inner; k++) mod._jsonDecodeCount(text);
    }, reps) / inner;
    const copyMs = timeBest(() => {
      for (let k = 0; k < inner; k++) mod._jsonDecodeCount('x' + text);
    }, reps) / inner;
    // The receive decoder on bytes already in wasm memory (written once, outside the timing).
    const encoded = new TextEncoder().encode(text);
    mod.HEAPU8.set(encoded, mod._decodeBuffer(encoded.length));
    if (mod._decodeServerInput(encoded.length) !== count) throw new Error('receive decoder returned the wrong count');
    const recvMs = timeBest(() => {
      for (let k = 0; k < inner; k++) mod._decodeServerInput(encoded.length);
    }, reps) / inner;
    const mbps = (ms) => bytes / 2 ** 20 / (ms / 1000);
    decodeRows.push([`${fmt(count)} frames (${fmt(bytes / 1024, 1)} KiB)`, mbps(jsMs), mbps(recvMs), ratio(jsMs, recvMs), mbps(wasmMs), mbps(Math.max(1e-9, wasmMs - copyMs)), mbps(copyMs)]);
    if (count === 10_000) bigRatio = jsMs / recvMs;
  }

  return {
    id: 'boundary',
    title: '2. Boundary crossing and JSON decoding (Node)',
    setup: `Replica of ${fmt(docs)} docs, then ${fmt(updates.length)} update messages applied one per call vs 1,000 per call (no live query). Decoding: the receive decoder (\`decode_server_batch\`, what receiveInput runs before applying) on the batch's UTF-8 bytes already in the wasm heap vs \`JSON.parse(text)\` of the same batch. Informative: \`_jsonDecodeCount(text)\` (UTF-16 -> UTF-8 copy into the wasm heap by Embind, then JsonReader building the whole value as nlohmann::json); "parse only" subtracts the copy, measured with a text the parser rejects at its first byte. Best of ${reps}.`,
    tables: [
      {
        columns: ['path', 'µs per message', 'messages/s', 'time per message vs batch'],
        rows: [
          ['receiveFrames, one message per call', perOne.toFixed(2), 1e6 / perOne, ratio(perOne, perBatch)],
          ['receiveFrames, 1,000 messages per call', perBatch.toFixed(2), 1e6 / perBatch, '1.00x'],
          ['empty crossing (_jsonDecodeCount("[1]"))', ((emptyMs * 1000) / callCount).toFixed(3), (callCount / emptyMs) * 1000, '–'],
        ],
      },
      { columns: ['input', 'JSON.parse MiB/s', 'receive decoder on bytes in wasm MiB/s', 'decoder vs JSON.parse', '_jsonDecodeCount total MiB/s', 'its parse only MiB/s', 'its copy in MiB/s'], rows: decodeRows },
    ],
    metrics: { perOneUs: perOne, perBatchUs: perBatch, emptyCallUs: (emptyMs * 1000) / callCount, decodeRatio: bigRatio },
    targets: [
      target('Receive decoder on bytes in wasm >= 1.0x JSON.parse (10k frames)', bigRatio >= 1, `${fmt(bigRatio, 3)}x${bigRatio >= 1 ? '' : ` (needs ${fmt(1 / bigRatio, 1)}x faster)`}`),
    ],
  };
}
