// The package as an outside developer meets it: `npm pack` of js-wrapper, installed with
// `npm ci` (offline, from the npm cache the workspace install filled) into a fresh Vite + React
// + TypeScript-strict app in a temp dir outside the workspace; type-checked with
// moduleResolution bundler and node10, built with Vite, and run in Chromium against the real
// syncline-server: a write round trip, a live query render, and the offline app shell recipe of
// docs/api.md (its service worker is taken from the docs, so the docs cannot drift from what
// is tested).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { startServer, makeToken, api, sleep, testConfig, freePort } from '../server/helpers.mjs';
import { launchBrowser } from '../e2e/helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '..', '..');
const PKG = join(ROOT, 'js-wrapper');
const FIXTURE = join(here, 'app');
const ADMIN = makeToken('pkg-admin', 'admin');
const CONFIG = testConfig({ collections: { todos: { read: { admin: 'all' }, write: { admin: 'all' } } } });

let work;
let appDir;
let tarball;
let entries;

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });

/** The names and bytes of a .tgz's files (tar: 512-byte headers, ustar prefix for long names). */
function untar(buf) {
  const data = gunzipSync(buf);
  const files = new Map();
  for (let off = 0; off + 512 <= data.length; ) {
    const h = data.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a, b) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const name = (str(345, 500) ? str(345, 500) + '/' : '') + str(0, 100);
    const size = parseInt(str(124, 136).trim() || '0', 8);
    if (h[156] === 0x30 || h[156] === 0) files.set(name, data.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** A lock file for the app: the workspace's own entries (same versions and integrity, so
 * `npm ci --offline` finds every tarball in the npm cache) plus the packed syncline. */
function lockFor(pkg, tgzName, tgzBytes) {
  const rootLock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')).packages;
  const names = new Set();
  // syncline's own dependencies (@sqlite.org/sqlite-wasm) come with it, as npm would lock them.
  const syncline = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8'));
  const queue = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies, ...syncline.dependencies }).filter((n) => n !== 'syncline');
  while (queue.length) {
    const n = queue.shift();
    const e = rootLock[`node_modules/${n}`];
    if (names.has(n) || !e) continue;
    names.add(n);
    const optionalPeers = Object.keys(e.peerDependenciesMeta ?? {}).filter((p) => e.peerDependenciesMeta[p].optional);
    const peers = Object.keys(e.peerDependencies ?? {}).filter((p) => !optionalPeers.includes(p));
    queue.push(...Object.keys({ ...e.dependencies, ...e.optionalDependencies }), ...peers);
  }
  const packages = { '': { name: pkg.name, dependencies: pkg.dependencies, devDependencies: pkg.devDependencies } };
  packages['node_modules/syncline'] = {
    version: syncline.version,
    resolved: `file:${tgzName}`,
    integrity: `sha512-${createHash('sha512').update(tgzBytes).digest('base64')}`,
    license: 'MIT',
    dependencies: syncline.dependencies,
    peerDependencies: { react: '^18.0.0 || ^19.0.0' },
  };
  for (const n of [...names].sort()) {
    const { dev, peer, ...e } = rootLock[`node_modules/${n}`];
    packages[`node_modules/${n}`] = e;
  }
  return { name: pkg.name, lockfileVersion: 3, requires: true, packages };
}

/** The service worker of docs/api.md's "Offline app shell" recipe. */
function swFromDocs() {
  const docs = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');
  const section = docs.slice(docs.indexOf('## Offline app shell'));
  const m = /```js\n((?: *\/\/ public\/sw\.js[^\n]*\n)[\s\S]*?)\n *```/.exec(section);
  assert.ok(m, 'docs/api.md has the public/sw.js block of the offline app shell recipe');
  return m[1].replace(/^ {3}/gm, '') + '\n';
}


before(() => {
  assert.ok(existsSync(join(PKG, 'dist', 'index.js')), 'js-wrapper is built (scripts/build.sh)');
  work = mkdtempSync(join(tmpdir(), 'syncline-package-'));
  const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], PKG));
  tarball = { name: packed[0].filename, size: packed[0].size, unpacked: packed[0].unpackedSize };
  entries = untar(readFileSync(join(work, tarball.name)));
  console.log(`# tarball ${tarball.name}: ${tarball.size} bytes packed, ${tarball.unpacked} unpacked, ${entries.size} files`);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the tarball: README, LICENSE, the engine once, source maps that resolve inside it', () => {
  const names = [...entries.keys()].map((n) => n.replace(/^package\//, ''));
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/react/index.js', 'dist/react/index.d.ts', 'dist/sqlite/index.js', 'dist/sqlite/index.d.ts', 'dist/sqlite/worker.js'])
    assert.ok(names.includes(f), `${f} is in the tarball`);
  assert.match(entries.get('package/LICENSE').toString(), /^MIT License/);
  const manifest = JSON.parse(entries.get('package/package.json').toString());
  assert.equal(manifest.license, 'MIT');
  assert.deepEqual(names.filter((n) => n.endsWith('.wasm')), ['dist/syncline.wasm'], 'syncline.wasm ships once');
  assert.deepEqual(names.filter((n) => n.endsWith('syncline.mjs')), ['dist/syncline.mjs'], 'the loader ships once');
  assert.equal(manifest.exports['./wasm/syncline.wasm'], './dist/syncline.wasm');
  assert.deepEqual(manifest.exports['./sqlite'], { types: './dist/sqlite/index.d.ts', import: './dist/sqlite/index.js' });
  assert.match(manifest.dependencies['@sqlite.org/sqlite-wasm'], /^\d+\.\d+\.\d+(-build\d+)?$/, 'SQLite pinned to one version');
  let maps = 0;
  for (const n of names.filter((x) => x.endsWith('.map'))) {
    const map = JSON.parse(entries.get(`package/${n}`).toString());
    for (const [i, src] of map.sources.entries()) {
      if (map.sourcesContent?.[i]) continue;
      const target = join(dirname(n), map.sourceRoot ?? '', src).replace(/\\/g, '/');
      assert.ok(names.includes(target), `${n}: source ${src} (${target}) is in the tarball`);
    }
    maps++;
  }
  for (const n of names.filter((x) => x.startsWith('dist/') && (x.endsWith('.js') || x.endsWith('.d.ts')) && !x.endsWith('syncline.mjs')))
    assert.ok(names.includes(`${n}.map`), `${n} has a source map`);
  assert.ok(maps > 10);
});

test('a fresh Vite + React + strict TypeScript app: install, type-check (bundler, node10), build, run in Chromium, offline shell', async () => {
  appDir = join(work, 'app');
  cpSync(FIXTURE, appDir, { recursive: true });
  mkdirSync(join(appDir, 'public'), { recursive: true });
  writeFileSync(join(appDir, 'public', 'sw.js'), swFromDocs());
  const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const ws = (n) => JSON.parse(readFileSync(join(ROOT, 'node_modules', n, 'package.json'), 'utf8')).version;
  const pkg = {
    name: 'syncline-package-check',
    private: true,
    type: 'module',
    dependencies: { syncline: `file:${tarball.name}`, react: ws('react'), 'react-dom': ws('react-dom') },
    devDependencies: { vite: rootPkg.devDependencies.vite, typescript: ws('typescript'), '@types/react': ws('@types/react'), '@types/react-dom': ws('@types/react-dom') },
  };
  cpSync(join(work, tarball.name), join(appDir, tarball.name));
  writeFileSync(join(appDir, 'package.json'), JSON.stringify(pkg, null, 2));
  writeFileSync(join(appDir, 'package-lock.json'), JSON.stringify(lockFor(pkg, tarball.name, readFileSync(join(work, tarball.name))), null, 2));
  try {
    run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], appDir);
  } catch (e) {
    assert.fail(`npm ci --offline failed (is the npm cache filled? scripts/bootstrap.sh runs npm ci): ${e.stderr}`);
  }
  const installed = JSON.parse(readFileSync(join(appDir, 'node_modules', 'syncline', 'package.json'), 'utf8'));
  assert.equal(installed.name, 'syncline');
  assert.ok(!existsSync(join(appDir, 'node_modules', 'syncline', 'wasm')), 'no second copy of the engine');

  const tsc = join(appDir, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const project of ['tsconfig.json', 'tsconfig.node10.json']) {
    try {
      run(process.execPath, [tsc, '--noEmit', '-p', project], appDir);
    } catch (e) {
      assert.fail(`tsc -p ${project}:\n${e.stdout}${e.stderr}`);
    }
  }
  run(process.execPath, [join(appDir, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], appDir);
  const dist = join(appDir, 'dist');
  const manifest = JSON.parse(readFileSync(join(dist, 'asset-manifest.json'), 'utf8'));
  assert.ok(Object.values(manifest).some((c) => c.file.endsWith('.wasm')), 'Vite emitted the wasm with no config');
  assert.ok(readdirSync(join(dist, 'assets')).some((f) => /^sqlite3-.*\.wasm$/.test(f)), "Vite emitted SQLite's wasm (syncline/sqlite) with no config");

  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'syncline-package-server-'));
  const start = () => startServer({ config: CONFIG, dir, args: ['--static', dist, '--port', String(port)] });
  let server = await start();
  const chrome = await launchBrowser();
  let mid = 0;
  const remote = async (id, title) => {
    const r = await api(server, 'POST', '/v1/mutations', {
      token: ADMIN,
      body: { client: 'pkg-remote', mutations: [{ mid: ++mid, op: 'insert', collection: 'todos', id, fields: { title, done: false } }] },
    });
    assert.equal(r.status, 200, r.text);
  };
  const serverTodos = async () => {
    const r = await api(server, 'GET', '/v1/snapshot?collections=todos&limit=1000', { token: ADMIN });
    assert.equal(r.status, 200, r.text);
    return r.json.docs;
  };
  try {
    await remote('t-seed', 'a seeded todo');
    const ctx = await chrome.browser.newContext();
    await ctx.addInitScript((t) => localStorage.setItem('token', t), ADMIN);
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e));
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#status[data-connected="true"]', { timeout: 20000 });
    await page.waitForSelector('#todos li[data-id="t-seed"]');

    // Live query: a change made elsewhere renders.
    await remote('t-remote', 'b remote todo');
    await page.waitForSelector('#todos li[data-id="t-remote"]');

    // Write round trip: the optimistic row, then the server's confirmation.
    await page.click('#add');
    await page.waitForSelector('#todos li[data-pending="true"], #todos li:nth-child(3)');
    await page.waitForSelector('#status[data-pending="0"]');
    const written = await page.$$eval('#todos li', (lis) => lis.map((l) => l.getAttribute('data-id')));
    const mine = written.filter((id) => id !== 't-seed' && id !== 't-remote');
    assert.equal(mine.length, 1);
    // SQL over the same view, in OPFS, from the package as installed.
    await page.waitForSelector('#sql-count[data-n="3"][data-storage="opfs"]', { state: 'attached', timeout: 15000 });
    assert.ok((await serverTodos()).some((d) => d.id === mine[0]), 'the write reached the server');

    // Offline app shell: the worker controls the page and holds the shell and the wasm.
    await page.waitForFunction(async () => {
      if (!navigator.serviceWorker.controller) return false;
      const cache = await caches.open((await caches.keys())[0] ?? 'none');
      const urls = (await cache.keys()).map((r) => r.url);
      return urls.some((u) => u.endsWith('.wasm')) && urls.some((u) => new URL(u).pathname === '/');
    }, null, { timeout: 15000 });

    await server.stop();
    await page.reload();
    await page.waitForSelector('#todos li[data-id="t-remote"]', { timeout: 15000 });
    await page.click('#add');
    await page.waitForSelector('#status[data-pending="1"]');
    const offlineId = await page.$eval('#todos li[data-pending="true"]', (l) => l.getAttribute('data-id'));
    // The pending write survives a reload with no network.
    await page.reload();
    await page.waitForSelector(`#todos li[data-id="${offlineId}"][data-pending="true"]`, { timeout: 15000 });
    await page.waitForSelector('#status[data-pending="1"]');
    // SQL in the offline shell: the worker and SQLite's wasm load from the service worker's cache.
    await page.waitForSelector('#sql-count[data-n="4"]', { state: 'attached', timeout: 15000 });

    server = await start();
    await page.waitForSelector('#status[data-pending="0"]', { timeout: 20000 });
    await sleep(200);
    const todos = await serverTodos();
    assert.equal(todos.filter((d) => d.id === offlineId).length, 1, 'the offline write reached the server once');
    assert.deepEqual(errors.map(String), []);
    await ctx.close();
  } finally {
    await chrome.close();
    await server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
