// e2e helpers for the realtime demo (demo/): a syncline-server with the demo config serving
// demo/dist, seeded by demo/scripts/seed.mjs, and small page helpers. Every process started
// here is stopped by the test that started it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, api, sleep, freePort } from '../server/helpers.mjs';
import { seed } from '../../demo/scripts/seed.mjs';
import { launchBrowser } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '..', '..');
export const DEMO_DIST = join(ROOT, 'demo', 'dist');
export const SHOTS = join(ROOT, 'docs', 'screenshots');
export { api, sleep, freePort };

export function demoConfig() {
  const config = JSON.parse(readFileSync(join(ROOT, 'server', 'config', 'demo.json'), 'utf8'));
  config.limits = { ...config.limits, rate_limit_per_sec: 2000, rate_limit_burst: 4000, heartbeat_ms: 2000 };
  return config;
}


/** Starts the demo server on a temp DB (or `dir`), on `port` (or a free one), and seeds it. */
export async function startDemo({ dir, port, seedData = true } = {}) {
  if (!existsSync(join(DEMO_DIST, 'index.html'))) throw new Error(`demo not built: ${DEMO_DIST} (cd demo && npm run build)`);
  const ownDir = !dir;
  dir = dir ?? mkdtempSync(join(tmpdir(), 'syncline-demo-test-'));
  port = port ?? (await freePort());
  const server = await startServer({ config: demoConfig(), dir, args: ['--static', DEMO_DIST, '--port', String(port)] });
  if (seedData) await seed(server.url);
  const cleanup = server.cleanup;
  server.cleanup = async () => {
    await cleanup();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  return server;
}

/** What every demo suite starts with: a seeded demo server, chromium, and the admin's token.
 * Close it with closeDemo (also when this fails half-way: nothing is left running). */
export async function openDemo() {
  const server = await startDemo();
  try {
    const chrome = await launchBrowser();
    return { server, chrome, adminToken: await demoToken(server, 'admin-maya', 'admin') };
  } catch (e) {
    await server.cleanup();
    throw e;
  }
}

export async function closeDemo({ server, chrome } = {}) {
  await chrome?.close();
  await server?.cleanup();
}

export function isoDay(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export async function demoToken(server, sub, role) {
  const r = await api(server, 'POST', '/v1/demo/token', { body: { sub, role } });
  if (r.status !== 200) throw new Error(`demo token: ${r.status} ${r.text}`);
  return r.json.token;
}

export async function snapshot(server, token, collection) {
  const r = await api(server, 'GET', `/v1/snapshot?collections=${collection}&limit=5000`, { token });
  if (r.status !== 200) throw new Error(`snapshot: ${r.status} ${r.text}`);
  return r.json.docs;
}

/** Opens the demo in a new page of `context`, signs in as `user` and waits for the workspace. */
export async function openAs(context, server, user, path = '/') {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  await page.goto(server.url + path);
  await page.click(`[data-user="${user}"]`);
  await page.waitForSelector('[data-testid="connection"][data-status="healthy"]', { timeout: 20000 });
  return page;
}

/** Writes docs/screenshots/<name>.png, only when asked (SYNCLINE_SHOTS=1, `npm run screenshots`):
 * a test run leaves the docs as they are. */
export async function shot(page, name) {
  if (process.env.SYNCLINE_SHOTS !== '1') return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

export async function metricValue(server, name) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Records every toast shown in the pages of `context` (toasts vanish after a few seconds):
 * read them with toasts(page). Call before opening the pages. */
export async function recordToasts(context) {
  await context.addInitScript(() => {
    window.__toasts = [];
    new MutationObserver((muts) => {
      for (const m of muts) {
        for (const n of m.addedNodes) {
          if (n.nodeType === 1 && n.classList.contains('toast')) window.__toasts.push({ kind: n.getAttribute('data-kind'), text: n.textContent });
        }
      }
    }).observe(document, { childList: true, subtree: true }); // documentElement may not exist yet
  });
}

/** The toasts `page` has shown so far ({kind, text}), optionally of one kind. */
export async function toasts(page, kind) {
  const all = await page.evaluate(() => window.__toasts ?? []);
  return kind ? all.filter((t) => t.kind === kind) : all;
}

/** Client-side navigation through the sidebar (the client and its pending writes stay). */
export async function goTo(page, path) {
  await page.click(`nav a[href="${path}"]`);
  await page.waitForFunction((p) => location.pathname === p, path);
}

/** Records a stock movement through the Inventory page's drawer (the page must show /inventory);
 * `save: false` leaves the form filled for the caller to submit. */
export async function fillMovement(page, productId, { kind = 'sale', qty = 1, note = '' } = {}) {
  await page.click(`[data-testid="inventory-table"] tr[data-id="${productId}"] button:has-text("Move stock")`);
  await page.check(`[data-testid="movement-form"] input[value="${kind}"]`);
  await page.fill('[data-testid="movement-form"] input[name="qty"]', String(qty));
  await page.fill('[data-testid="movement-form"] input[name="note"]', note);
}

/** The stock the page shows for a product on /inventory, once no write of it is pending. */
export async function waitStock(page, productId, value, timeout = 15000) {
  await page.waitForFunction(
    ([id, v]) => {
      const row = document.querySelector(`[data-testid="inventory-table"] tr[data-id="${id}"]`);
      return !!row && !row.classList.contains('pending') && row.querySelector('[data-testid="stock"]')?.textContent === String(v);
    },
    [productId, value],
    { timeout },
  );
}
