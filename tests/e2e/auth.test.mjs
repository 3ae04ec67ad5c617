// What a write does while the server refuses the token. The client asks token() again for every
// request and stream open, so a token the app refreshes there passes on the next attempt; a
// refusal that persists (three attempts in a row) is final: the write's promise rejects with
// `unauthorized`, its change leaves the view, status says `unauthorized` and the stream stops
// retrying until a request goes through (forceSync, or any write with a good token again).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAppServer, launchBrowser, openHarness, clientOptions, makeToken, waitFor, serverDocs } from './helpers.mjs';

const good = makeToken('auth-user', 'admin');
const wrongSecret = makeToken('auth-user', 'admin', { secret: 'not-the-server-secret' });
const expired = makeToken('auth-user', 'admin', { exp: Math.floor(Date.now() / 1000) - 60 });
let chrome;
let server;

before(async () => {
  chrome = await launchBrowser();
  server = await startAppServer();
});
after(async () => {
  await chrome?.close();
  await server?.cleanup();
});

const outcome = (page, key) => waitFor(page, (k) => {
  const o = window.harness.outcome(k);
  return o.state === 'pending' ? null : o;
}, key, { what: `the outcome of ${key}` });

for (const transport of ['sse', 'websocket']) {
  test(`a token refused for good settles the write as unauthorized; a good one later syncs again (${transport})`, async () => {
    const ctx = await chrome.browser.newContext();
    try {
      const page = await openHarness(ctx, server, { ...clientOptions(server, undefined, { transport, name: `auth-final-${transport}` }), tokens: [wrongSecret] });
      const w = await page.evaluate((id) => window.harness.write('insert', 'bills', id, { total: 1 }), `auth-refused-${transport}`);
      assert.equal(w.visible, true, 'shown at once, before any answer');
      const o = await outcome(page, w.key);
      assert.equal(o.state, 'rejected');
      assert.equal(o.code, 'unauthorized');
      const st = await page.evaluate(() => window.harness.status());
      assert.equal(st.lastError?.code, 'unauthorized');
      assert.equal(st.connection, 'error', 'the stream stopped retrying');
      assert.equal(st.pendingOperations, 0);
      assert.equal(await page.evaluate((id) => window.harness.get('bills', id), `auth-refused-${transport}`), null, 'the change left the view');
      assert.ok(await page.evaluate(() => window.harness.tokenCalls()) >= 3, 'token() was asked on every attempt');

      // The app signs in again: the next sync uses the new token and everything flows.
      await page.evaluate((t) => window.harness.setTokens([t]), good);
      await page.evaluate(() => window.harness.forceSync());
      await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected with the new token' });
      const w2 = await page.evaluate((id) => window.harness.write('insert', 'bills', id, { total: 2 }), `auth-after-${transport}`);
      const o2 = await outcome(page, w2.key);
      assert.equal(o2.state, 'applied', JSON.stringify(o2));
      const ids = (await serverDocs(server, good, 'bills')).map((d) => d.id);
      assert.ok(ids.includes(`auth-after-${transport}`));
      assert.ok(!ids.includes(`auth-refused-${transport}`), 'a refused write never reached the server');
      assert.deepEqual(page.errors.map(String), []);
    } finally {
      await ctx.close();
    }
  });

  test(`an expired token that token() refreshes loses nothing, offline writes included (${transport})`, async () => {
    const ctx = await chrome.browser.newContext();
    try {
      const page = await openHarness(ctx, server, { ...clientOptions(server, undefined, { transport, name: `auth-refresh-${transport}` }), tokens: [good] });
      await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected' });
      await page.evaluate(() => window.harness.goOffline());
      const w = await page.evaluate(() => window.harness.write('insert', 'bills', `auth-offline-${Date.now()}`, { total: 3 }));
      // While offline the token expired; the app's token() hands out a fresh one after one more
      // call with the old one (as a refresh that lags would).
      await page.evaluate(([a, b]) => window.harness.setTokens([a, b]), [expired, good]);
      await page.evaluate(() => window.harness.goOnline());
      const o = await outcome(page, w.key);
      assert.equal(o.state, 'applied', JSON.stringify(o));
      await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected again' });
      assert.equal((await page.evaluate(() => window.harness.status())).pendingOperations, 0);
      assert.deepEqual(page.errors.map(String), []);
    } finally {
      await ctx.close();
    }
  });
}
