// End-to-end: the replica stored in IndexedDB as one image record plus the documents changed
// since (adapters/persistence.ts). A client that syncs a replica larger than the image
// threshold stores it as an image; later changes land as records beside it; a restart without
// a server restores image + records, newest winning, deletions kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appServerAndBrowser, openHarness, clientOptions, waitFor, makeToken, api } from './helpers.mjs';

const admin = makeToken('admin-1', 'admin');
const DOCS = 800;
const env = appServerAndBrowser();
let mid = 0;

async function write(mutations) {
  const r = await api(env.server, 'POST', '/v1/mutations', {
    token: admin, body: { client: 'image-seed', mutations: mutations.map((m) => ({ mid: ++mid, ...m })) },
  });
  assert.equal(r.status, 200, r.text);
  for (const x of r.json.results) assert.equal(x.status, 'applied', r.text);
}

/** What the client's database holds: the image's size and the document records beside it. */
const stored = (name) => new Promise((resolve, reject) => {
  const r = indexedDB.open(`syncline:${name}`);
  r.onerror = () => reject(r.error);
  r.onsuccess = () => {
    const db = r.result;
    const tx = db.transaction(['images', 'docs'], 'readonly');
    const image = tx.objectStore('images').get('docs');
    const docs = tx.objectStore('docs').getAll();
    tx.oncomplete = () => {
      db.close();
      const bytes = image.result;
      resolve({
        imageDocs: bytes ? JSON.parse(new TextDecoder().decode(bytes)).length : 0,
        records: docs.result.map((d) => ({ id: d.id, erased: !!d.erased, deleted: !!d.deleted, total: d.fields?.total })),
      });
    };
  };
});

test('a large replica is stored as one image; changes since are records beside it; a restart without a server restores both', async () => {
  for (let from = 0; from < DOCS; from += 400) {
    await write(Array.from({ length: 400 }, (_, k) => ({ op: 'insert', collection: 'bills', id: `img-${from + k}`, fields: { total: from + k, status: 'unpaid' } })));
  }
  const { server, chrome } = env;
  const ctx = await chrome.browser.newContext();
  try {
    const name = 'replica-image';
    const opts = clientOptions(server, admin, { name });
    const page = await openHarness(ctx, server, opts);
    await waitFor(page, (n) => window.harness.docs('bills').length >= n, DOCS, { what: 'the replica synced' });
    const first = await waitFor(page, async (n) => {
      const s = await (0, eval)(`(${n.fn})`)(n.name);
      return s.imageDocs >= n.docs ? s : null;
    }, { fn: stored.toString(), name, docs: DOCS }, { what: 'the image written' });
    assert.ok(first.records.length < 500, `document records beside the image: ${first.records.length}`);

    // Changes after the image: an update and a delete, stored as records.
    await write([
      { op: 'update', collection: 'bills', id: 'img-1', fields: { total: 1001, status: 'paid' } },
      { op: 'delete', collection: 'bills', id: 'img-2' },
    ]);
    await waitFor(page, () => window.harness.get('bills', 'img-1')?.fields.total === 1001 && !window.harness.get('bills', 'img-2'), null, { what: 'changes applied' });
    const later = await waitFor(page, async (n) => {
      const s = await (0, eval)(`(${n.fn})`)(n.name);
      const one = s.records.find((r) => r.id === 'img-1');
      const two = s.records.find((r) => r.id === 'img-2');
      return one?.total === 1001 && two?.deleted ? s : null;
    }, { fn: stored.toString(), name }, { what: 'the changes stored as records' });
    assert.equal(later.imageDocs, first.imageDocs, 'the image is not rewritten for two changes');

    // Restarted against a node that does not answer: what it shows is what was stored.
    await page.reload();
    await page.waitForFunction(() => window.harnessReady === true);
    await page.evaluate((o) => window.harness.start(o), { ...opts, url: 'http://127.0.0.1:9' });
    const restored = await page.evaluate(() => ({ docs: window.harness.docs('bills'), status: window.harness.status() }));
    assert.equal(restored.status.isConnected, false);
    const byId = new Map(restored.docs.map((d) => [d.id, d]));
    assert.equal(byId.size, DOCS - 1, 'every document of the image, minus the deleted one');
    assert.equal(byId.get('img-1').fields.total, 1001, 'the record written after the image wins');
    assert.equal(byId.has('img-2'), false, 'the deletion after the image is kept');
    assert.equal(byId.get('img-799').fields.total, 799);
    assert.deepEqual(page.errors, []);
  } finally {
    await ctx.close();
  }
});
