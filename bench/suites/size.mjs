// Benchmark 6 (Node): download size and replica memory.
//  - As an app ships it: two small apps (createClient alone; with the React hooks, React itself
//    left out) bundled and minified by Vite as a production build does, and the bytes of what it
//    emits (JS chunks and the wasm asset), gzip -9 and brotli -11. The target is read on these.
//  - As the package ships it: gzip -9 bytes of syncline.wasm + the JS a browser app loads (the
//    package's dist/*.js and dist/adapters/*.js + the Emscripten loader syncline.mjs), the
//    React entry listed apart.
//  - wasm heap per 100k documents: a fresh module instance per measurement; the size of the
//    wasm linear memory (Module.HEAP8.buffer.byteLength, which Emscripten re-points after every
//    growth) before and after 100k documents are applied, vs the raw JSON bytes of those
//    documents. Memory grows in steps (ALLOW_MEMORY_GROWTH over-allocates geometrically), so the
//    delta is an upper bound; the live-heap estimate from successive fills is reported as well.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import { SyncEngine } from '../../js-wrapper/dist/internal.js';
import { fmt, REPO_ROOT, target } from '../lib/common.mjs';
import { makeDocs } from '../lib/data.mjs';

const PKG = join(REPO_ROOT, 'js-wrapper');
const VITE_VERSION = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'vite', 'package.json'), 'utf8')).version;

function files(dir, filter) {
  try {
    return readdirSync(dir).filter(filter).map((f) => join(dir, f)).filter((p) => statSync(p).isFile());
  } catch {
    return [];
  }
}

function sizeOf(list) {
  let raw = 0;
  let gz = 0;
  for (const p of list) {
    const b = readFileSync(p);
    raw += b.length;
    gz += gzipSync(b, { level: 9 }).length;
  }
  return { raw, gz, n: list.length };
}

// The files a production build of `source` emits (Vite, minified, `syncline` resolved by package
// name), gzip -9 and brotli -11 each; React stays out (an app has it anyway).
async function appBundle(source) {
  const { build } = await import('vite');
  // Inside the repository's node_modules, so `syncline` resolves through its package exports
  // as it does in an app.
  mkdirSync(join(REPO_ROOT, 'node_modules', '.cache'), { recursive: true });
  const dir = mkdtempSync(join(REPO_ROOT, 'node_modules', '.cache', 'syncline-size-'));
  try {
    writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>\n');
    writeFileSync(join(dir, 'main.js'), source);
    const out = join(dir, 'dist');
    await build({
      root: dir,
      configFile: false,
      logLevel: 'warn',
      build: { outDir: out, emptyOutDir: true, minify: true, target: 'es2022', rollupOptions: { external: ['react', 'react-dom', 'react/jsx-runtime'] } },
    });
    const assets = files(join(out, 'assets'), () => true);
    const measure = (list) => {
      const m = sizeOf(list);
      m.br = list.reduce((n, p) => n + brotliCompressSync(readFileSync(p), { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } }).length, 0);
      return m;
    };
    return { js: measure(assets.filter((p) => p.endsWith('.js'))), wasm: measure(assets.filter((p) => p.endsWith('.wasm'))) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function freshModule() {
  const factory = (await import(join(PKG, 'dist', 'syncline.mjs'))).default;
  return factory({ wasmBinary: readFileSync(join(PKG, 'dist', 'syncline.wasm')) });
}

export async function run({ quick }) {
  const wasm = sizeOf([join(PKG, 'dist', 'syncline.wasm')]);
  const loader = sizeOf([join(PKG, 'dist', 'syncline.mjs')]);
  const js = sizeOf([...files(join(PKG, 'dist'), (f) => f.endsWith('.js')), ...files(join(PKG, 'dist', 'adapters'), (f) => f.endsWith('.js'))]);
  const react = sizeOf(files(join(PKG, 'dist', 'react'), (f) => f.endsWith('.js')));
  const total = wasm.gz + loader.gz + js.gz;
  const app = await appBundle("import { createClient } from 'syncline';\nglobalThis.app = createClient;\n");
  const reactApp = await appBundle(
    "import { createClient } from 'syncline';\nimport { SyncProvider, useCollection, useSyncStatus } from 'syncline/react';\n" +
      'globalThis.app = [createClient, SyncProvider, useCollection, useSyncStatus];\n',
  );
  const shipped = app.js.gz + app.wasm.gz;
  const appRow = (name, a) => [name, a.js.n + a.wasm.n, a.js.raw, a.js.gz, a.js.br, a.wasm.gz, a.wasm.br, a.js.gz + a.wasm.gz, a.js.br + a.wasm.br];

  const n = quick ? 20_000 : 100_000;
  const docs = makeDocs(n);
  const rawBytes = docs.reduce((s, d) => s + Buffer.byteLength(JSON.stringify(d)), 0);
  const mod = await freshModule();
  const heap = () => mod.HEAP8.buffer.byteLength;
  // The allocator's own figures: what live allocations hold, and the top of the heap.
  const stats = () => JSON.parse(mod._heapStats());
  const e = SyncEngine.create(mod, { clientId: 'bench', collections: ['bills'] });
  const h0 = heap();
  const s0 = stats();
  // Applied as a server would send them: change frames, 1,000 per call. After each call the
  // storage writes are taken, as the client's persistence does (the history stays bounded).
  const frame = (d) => JSON.stringify({ type: 'change', seq: d.version, collection: d.collection, id: d.id, op: 'insert', version: d.version, fields: d.fields, origin: null });
  const marks = [];
  for (let i = 0; i < n; i += 1000) {
    e.receiveFrames(docs.slice(i, i + 1000).map(frame), 0);
    e.takePersistence();
    if ((i + 1000) % (n / 4) === 0) marks.push(heap());
  }
  if (e.documents.length === undefined) throw new Error('unreachable');
  const h1 = heap();
  const s1 = stats();
  const per100k = ((h1 - h0) / n) * 100_000;
  const rawPer100k = (rawBytes / n) * 100_000;
  const factor = (h1 - h0) / rawBytes;
  const topFactor = (s1.top - s0.top) / rawBytes;
  const inUseFactor = (s1.inUse - s0.inUse) / rawBytes;
  e.dispose();

  return {
    id: 'size',
    title: '6. Size and memory',
    setup: `Size: an app importing createClient (and one also importing the React hooks, React itself external) built by Vite ${VITE_VERSION} for production (minified, as an app ships it), gzip -9 and brotli -11 of what it emits; and gzip -9 of the files a browser loads from the package as published (js-wrapper/dist, not minified). Memory: ${fmt(n)} documents (6 fields each) applied as insert frames into a fresh module, 1,000 per call, the storage writes taken after each call as the client does; the allocator's figures (top of the heap, bytes in live allocations) and the wasm memory size before/after. Raw JSON = sum of JSON.stringify(document) bytes.`,
    tables: [
      {
        columns: ['app (Vite production build, minified)', 'files', 'JS bytes', 'JS gzip', 'JS brotli', 'wasm gzip', 'wasm brotli', 'total gzip', 'total brotli'],
        rows: [appRow('createClient', app), appRow('createClient + syncline/react hooks (React not counted)', reactApp)],
      },
      {
        columns: ['package as shipped (js-wrapper/dist, not minified)', 'files', 'raw bytes', 'gzip bytes'],
        rows: [
          ['syncline.wasm', 1, wasm.raw, wasm.gz],
          ['syncline.mjs (Emscripten loader)', 1, loader.raw, loader.gz],
          ['dist/*.js + dist/adapters/*.js (API + runtime)', js.n, js.raw, js.gz],
          ['**total a page loads**', wasm.n + loader.n + js.n, wasm.raw + loader.raw + js.raw, total],
          ['dist/react/*.js (optional hooks)', react.n, react.raw, react.gz],
        ],
      },
      {
        columns: ['documents', 'raw JSON bytes', 'measure', 'before', 'after', 'growth', 'growth / raw JSON'],
        rows: [
          [n, rawBytes, 'top of the malloc heap (sbrk)', s0.top, s1.top, s1.top - s0.top, `${fmt(topFactor, 2)}x`],
          [n, rawBytes, 'bytes in live allocations (mallinfo)', s0.inUse, s1.inUse, s1.inUse - s0.inUse, `${fmt(inUseFactor, 2)}x`],
          [n, rawBytes, 'wasm memory size (grows in steps)', h0, h1, h1 - h0, `${fmt(factor, 2)}x`],
        ],
      },
    ],
    metrics: { heapTopFactor: topFactor, heapInUseFactor: inUseFactor, shippedGzip: shipped, shippedBrotli: app.js.br + app.wasm.br, reactAppGzip: reactApp.js.gz + reactApp.wasm.gz, totalGzip: total, wasmGzip: wasm.gz, heapPer100k: per100k, rawPer100k, heapFactor: factor, heapMarks: marks },
    targets: [
      target('Size: minified JS + wasm as an app ships it <= 180 KiB gzip', shipped <= 180 * 1024, `${fmt(shipped)} bytes = ${fmt(shipped / 1024, 1)} KiB gzip (brotli ${fmt(app.js.br + app.wasm.br)} bytes)${shipped <= 180 * 1024 ? '' : `; over by ${fmt(shipped - 180 * 1024)} bytes (${fmt((shipped / (180 * 1024) - 1) * 100, 1)}%)`}; the package as shipped, not minified: ${fmt(total)} bytes`),
      target('Memory: top of the malloc heap <= 1.5x the raw JSON bytes', topFactor <= 1.5, `${fmt(topFactor, 2)}x${topFactor <= 1.5 ? '' : ` (over by ${fmt(topFactor / 1.5, 2)}x)`}; live allocations ${fmt(inUseFactor, 2)}x`),
    ],
  };
}
