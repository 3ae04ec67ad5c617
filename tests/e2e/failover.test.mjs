// A client given several server URLs (nodes of one cluster) in Debian's chromium, over both
// transports: it connects through a node that answers when the first does not, writes and
// receives there; and when its node dies and the database comes back on the next URL, it resumes
// there from its cursor, with its writes applied once and nothing missed.
// Two live syncline-server processes cannot share one SQLite database (the file lock), so the
// cluster here is one server at a time: a closed port as the dead node, or the same database
// directory restarted on the second URL's port. (A real two-node cluster on PostgreSQL is for
// another suite.)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAppServer, launchBrowser, openHarness, clientOptions, waitFor, makeToken, serverDocs, api, sleep,
} from './helpers.mjs';
import { freePort } from '../server/helpers.mjs';

const admin = makeToken('failover-admin', 'admin');
const writer = makeToken('failover-writer', 'admin');

const norm = (list) => list.map((d) => [d.id, d.version, JSON.stringify(d.fields)]).sort();
const nodeEntries = (p) => p.evaluate(() => window.harness.events().entries.filter((e) => e.type === 'node').map((e) => e.data));
const status = (p) => p.evaluate(() => window.harness.status());

/** Inserts `ids` into bills as another client (the server's API, not the page). */
async function writeElsewhere(server, client, ids, { spacingMs = 0, tolerant = false } = {}) {
  for (let i = 0; i < ids.length; i++) {
    const r = await api(server, 'POST', '/v1/mutations', {
      token: writer,
      body: { client, mutations: [{ mid: i + 1, op: 'insert', collection: 'bills', id: ids[i], fields: { total: i, status: 'unpaid' } }] },
    }).catch((e) => (tolerant ? null : Promise.reject(e)));
    if (r && !tolerant) assert.equal(r.status, 200, r.text);
    if (spacingMs) await sleep(spacingMs);
  }
}

for (const transport of ['sse', 'websocket']) {
  describe(`failover (${transport})`, () => {
    let chrome;
    before(async () => {
      chrome = await launchBrowser();
    });
    after(async () => {
      await chrome?.close();
    });

    test('the first URL does not answer: the client connects, writes and receives through the second', async () => {
      const server = await startAppServer();
      const ctx = await chrome.browser.newContext();
      try {
        const dead = `http://127.0.0.1:${await freePort()}`;
        const opts = clientOptions(server, admin, { transport, name: `failover-dead-${transport}`, url: [dead, server.url] });
        const p = await openHarness(ctx, server, opts);
        await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected through the second URL' });
        const s = await status(p);
        assert.equal(s.node, server.url, 'status.node names the node in use');
        const moves = await nodeEntries(p);
        assert.ok(moves.length >= 1, 'the move is in the history');
        assert.deepEqual({ from: moves[0].from, to: moves[0].to }, { from: dead, to: server.url });

        // Writes go to the live node and come back confirmed.
        const ids = [0, 1, 2].map((i) => `dead-first-${transport}-${i}`);
        const keys = [];
        for (const id of ids) keys.push((await p.evaluate((id) => window.harness.write('insert', 'bills', id, { total: 1, status: 'unpaid' }), id)).key);
        for (const k of keys) await waitFor(p, (k) => window.harness.outcome(k)?.state === 'applied', k, { what: `${k} applied` });
        const onServer = (await serverDocs(server, admin, 'bills')).map((d) => d.id);
        for (const id of ids) assert.ok(onServer.includes(id), `${id} on the server`);

        // Another client's writes arrive over the stream from the live node.
        const theirs = [0, 1].map((i) => `dead-first-theirs-${transport}-${i}`);
        await writeElsewhere(server, `dead-first-other-${transport}`, theirs);
        for (const id of theirs) await waitFor(p, (id) => window.harness.get('bills', id) !== null, id, { what: `${id} received` });
        assert.equal((await status(p)).node, server.url, 'still on the live node');
        assert.deepEqual(p.errors, []);
      } finally {
        await ctx.close();
        await server.cleanup();
      }
    });

    test('the node dies; the database comes back on the second URL: the client resumes there from its cursor, nothing lost, its writes applied once', async () => {
      const [portA, portB] = [await freePort(), await freePort()];
      const urlA = `http://127.0.0.1:${portA}`;
      const urlB = `http://127.0.0.1:${portB}`;
      const first = await startAppServer({ args: ['--port', String(portA)] });
      let server = first;
      const dir = first.dir;
      const ctx = await chrome.browser.newContext();
      try {
        const opts = clientOptions(server, admin, { transport, name: `failover-restart-${transport}`, url: [urlA, urlB] });
        const p = await openHarness(ctx, server, opts);
        await waitFor(p, () => window.harness.status().isConnected, null, { what: 'connected to A' });
        assert.equal((await status(p)).node, urlA);
        const before = await p.evaluate(() => window.harness.events().counts);

        const mine = [0, 1].map((i) => `restart-mine-${transport}-${i}`);
        for (const id of mine) {
          const { key } = await p.evaluate((id) => window.harness.write('insert', 'bills', id, { total: 2, status: 'unpaid' }), id);
          await waitFor(p, (k) => window.harness.outcome(k)?.state === 'applied', key, { what: `${id} applied on A` });
        }

        // Another client writes through A while A is killed under it.
        const theirs = Array.from({ length: 30 }, (_, i) => `restart-theirs-${transport}-${i}`);
        const writing = writeElsewhere(server, `restart-writer-${transport}`, theirs, { spacingMs: 10, tolerant: true });
        await sleep(100);
        server.proc.kill('SIGKILL');
        await server.exited;
        await writing;
        await waitFor(p, () => !window.harness.status().isConnected, null, { what: 'the loss of A noticed' });
        const cursorAtLoss = (await status(p)).cursor;

        // Writes made while no node answers wait in the outbox.
        const offline = [0, 1, 2].map((i) => `restart-pending-${transport}-${i}`);
        const pendingKeys = [];
        for (const id of offline) pendingKeys.push((await p.evaluate((id) => window.harness.write('insert', 'bills', id, { total: 3, status: 'unpaid' }), id)).key);
        assert.ok((await status(p)).pendingOperations >= offline.length);

        // The same database comes back as node B; more changes land there before the client is back.
        server = await startAppServer({ dir, args: ['--port', String(portB)] });
        const later = [0, 1].map((i) => `restart-later-${transport}-${i}`);
        await writeElsewhere(server, `restart-later-${transport}`, later);

        await waitFor(p, () => window.harness.status().isConnected, null, { what: 'reconnected to B', timeout: 20000 });
        const s = await status(p);
        assert.equal(s.node, urlB, 'status.node is B');
        assert.ok((await nodeEntries(p)).some((m) => m.from === urlA && m.to === urlB), 'a move from A to B in the history');

        for (const k of pendingKeys) await waitFor(p, (k) => window.harness.outcome(k)?.state === 'applied', k, { what: `${k} applied on B` });
        const fresh = await serverDocs(server, admin, 'bills');
        await waitFor(p, (n) => window.harness.docs('bills').length === n && window.harness.status().pendingOperations === 0, fresh.length, { what: 'replica caught up' });
        const replica = await p.evaluate(() => window.harness.docs('bills'));
        assert.deepEqual(norm(replica), norm(fresh), 'the replica equals the database');
        const onServer = fresh.map((d) => d.id);
        for (const id of [...mine, ...offline, ...later]) assert.ok(onServer.includes(id), `${id} on the server`);
        for (const id of offline) assert.equal(fresh.find((d) => d.id === id).version > 0, true);
        // Each of the client's writes applied once: an insert applied twice would have been
        // refused as a conflict, and its outcome would say so.
        const outcomes = await p.evaluate(() => window.harness.outcomes());
        assert.deepEqual(Object.values(outcomes).map((o) => o.state), Array(mine.length + offline.length).fill('applied'));

        const after = await p.evaluate(() => window.harness.events().counts);
        assert.equal(after.snapshot ?? 0, before.snapshot ?? 0, 'resumed from the cursor on B: no new snapshot');
        assert.equal(after.reset ?? 0, before.reset ?? 0, 'no reset');
        assert.ok((await status(p)).cursor > cursorAtLoss);
        assert.deepEqual(p.errors, []);
      } finally {
        await ctx.close();
        await server.cleanup();
        if (server !== first) await first.cleanup(); // the database directory is the first's
      }
    });
  });
}
