// e2e helpers: a real syncline-server serving the harness pages, and Debian's chromium driven
// by playwright-core. Every process started here is stopped by the test that started it.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';
import { startServer, makeToken, testConfig, api, sleep } from '../server/helpers.mjs';

export { makeToken, api, sleep, testConfig };
const here = dirname(fileURLToPath(import.meta.url));
export const APP_DIST = resolve(here, 'app', 'dist');
export const CHROMIUM = process.env.SYNCLINE_CHROMIUM || '/usr/bin/chromium';

export async function startAppServer(opts = {}) {
  if (!existsSync(join(APP_DIST, 'harness.html'))) throw new Error(`harness not built: ${APP_DIST}`);
  return startServer({ ...opts, args: ['--static', APP_DIST, ...(opts.args ?? [])] });
}

export async function launchBrowser() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'syncline-chromium-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const close = async () => {
    await browser.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { browser, close };
}

/** A server serving the harness and a browser for the tests registered after this call, both
 * started before them and stopped after them (node:test hooks). Read `.server` and `.chrome`
 * inside the tests. */
export function appServerAndBrowser(opts = {}) {
  const ctx = { server: null, chrome: null };
  before(async () => {
    ctx.server = await startAppServer(opts);
    ctx.chrome = await launchBrowser();
  });
  after(async () => {
    await ctx.chrome?.close();
    await ctx.server?.cleanup();
  });
  return ctx;
}

/** Opens the harness page and fails the test on any page error. */
/** `beforeLoad(p)`: what must be in place before the page loads (request listeners, routes). */
export async function openHarness(context, server, options, page = 'harness.html', { beforeLoad } = {}) {
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e));
  p.errors = errors;
  if (beforeLoad) await beforeLoad(p);
  await p.goto(`${server.url}/${page}`);
  await p.waitForFunction(() => window.harnessReady === true);
  if (options) await p.evaluate((o) => window.harness.start(o), options);
  return p;
}

export function clientOptions(server, token, extra = {}) {
  return {
    url: server.url,
    token,
    collections: ['bills', 'products', 'bookings'],
    backoff: { baseMs: 100, capMs: 1000, heartbeatTimeoutMs: 5000 },
    ...extra,
  };
}

/** Polls fn (evaluated in the page) until it returns a truthy value. */
export async function waitFor(page, fn, arg, { timeout = 15000, what = 'condition' } = {}) {
  const start = Date.now();
  let last;
  while (Date.now() - start < timeout) {
    last = await page.evaluate(fn, arg);
    if (last) return last;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

export async function waitUntil(fn, { timeout = 15000, what = 'condition' } = {}) {
  const start = Date.now();
  let last;
  while (Date.now() - start < timeout) {
    last = await fn();
    if (last) return last;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

/** Every document of `collection` the token may read, through every page of the snapshot. */
export async function serverDocs(server, token, collection) {
  const docs = [];
  for (let after = null; ;) {
    const q = `collections=${collection}&limit=5000${after ? `&after=${encodeURIComponent(after)}` : ''}`;
    const r = await api(server, 'GET', `/v1/snapshot?${q}`, { token });
    if (r.status !== 200) throw new Error(`snapshot failed: ${r.status} ${r.text}`);
    docs.push(...r.json.docs);
    if (!r.json.next) return docs;
    after = r.json.next;
  }
}

export async function metrics(server) {
  const r = await fetch(`${server.url}/metrics`);
  return r.text();
}

export function metric(text, name) {
  const m = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return m ? Number(m.split(' ').pop()) : null;
}
