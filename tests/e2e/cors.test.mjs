// A page whose origin the server's allowed_origins refuses is told so (code `cors`), instead of
// looking like a server that is down; a server that is down still reads `network`.
// The page is served from http://127.0.0.1:PORT and the client talks to http://localhost:PORT,
// so every request is cross-origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAppServer, launchBrowser, openHarness, makeToken, waitFor, testConfig, APP_DIST } from './helpers.mjs';
import { freePort } from '../server/helpers.mjs';

const admin = makeToken('cors-admin', 'admin');
let chrome;

before(async () => {
  chrome = await launchBrowser();
});
after(async () => {
  await chrome?.close();
});


async function withServer(allowed, fn) {
  const port = await freePort();
  const server = await startAppServer({ config: testConfig({ allowed_origins: allowed(port) }), args: ['--port', String(port)] });
  const ctx = await chrome.browser.newContext();
  try {
    await fn(server, ctx, `http://localhost:${port}`);
  } finally {
    await ctx.close();
    await server.cleanup();
  }
}

const options = (url, transport) => ({ url, token: admin, transport, collections: ['bills'], persistence: 'memory', name: `cors-${transport}-${Date.now()}`, backoff: { baseMs: 100, capMs: 500 } });
const lastError = (p) => p.evaluate(() => window.harness.status().lastError);
const publishCode = (p) => p.evaluate(() => window.harness.publish('ping', {}).then(() => null, (e) => e.code));

test('HTTP requests from a refused origin reject with cors; from an allowed one they work', async () => {
  assert.ok(APP_DIST);
  await withServer(() => ['http://app.example'], async (server, ctx, url) => {
    const page = await openHarness(ctx, server, options(url, 'sse'));
    assert.equal(await publishCode(page), 'cors');
    assert.deepEqual(page.errors.map(String), []);
  });
  await withServer((port) => [`http://127.0.0.1:${port}`], async (server, ctx, url) => {
    const page = await openHarness(ctx, server, options(url, 'sse'));
    await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected from an allowed origin' });
    assert.equal(await publishCode(page), null);
  });
});

for (const transport of ['sse', 'websocket']) {
  test(`a stream from a refused origin says why in status.lastError (${transport})`, async () => {
    await withServer(() => ['http://app.example'], async (server, ctx, url) => {
      const page = await openHarness(ctx, server, options(url, transport));
      const err = await waitFor(page, () => window.harness.status().lastError, null, { what: 'a connection error' });
      assert.match(err.message, /allowed_origins/, JSON.stringify(err));
      // The transport reports the diagnosis as a `cors: ...` reason; the client maps it to the code.
      assert.equal((await lastError(page)).code, 'cors');
    });
  });
}

test('a server that is down is network, not cors', async () => {
  await withServer(() => [], async (server, ctx, url) => {
    const page = await openHarness(ctx, server, options(url, 'sse'));
    await waitFor(page, () => window.harness.status().isConnected, null, { what: 'connected' });
    await server.stop();
    const err = await waitFor(page, () => window.harness.status().lastError, null, { what: 'a connection error' });
    assert.equal(err.code, 'network', JSON.stringify(err));
    assert.equal(await publishCode(page), 'network');
  });
});
