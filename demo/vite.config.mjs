// Layer: demo. Plain Vite: .tsx is transformed with React's automatic runtime without plugins,
// and the syncline package's .wasm is found with no configuration. The one addition is the
// service worker's precache list: after the build, dist/sw.js gets every emitted file and a
// version derived from their hashes, so a new deployment installs a new worker.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

function precacheServiceWorker() {
  let outDir;
  return {
    name: 'syncline-demo-precache',
    apply: 'build',
    configResolved(c) {
      outDir = c.build.outDir.startsWith('/') ? c.build.outDir : join(root, c.build.outDir);
    },
    closeBundle() {
      const swPath = join(outDir, 'sw.js');
      const list = files(outDir)
        .map((p) => '/' + relative(outDir, p).split('\\').join('/'))
        .filter((u) => u !== '/sw.js' && !u.endsWith('.map') && !u.endsWith('/icon-maskable.svg'))
        .sort();
      const hash = createHash('sha256');
      for (const u of list) hash.update(u).update(readFileSync(join(outDir, u)));
      const version = hash.digest('hex').slice(0, 12);
      const urls = ['/', ...list];
      const sw = readFileSync(swPath, 'utf8').replace("const VERSION = '__VERSION__';", `const VERSION = '${version}';`)
        .replace('const PRECACHE = __PRECACHE__;', `const PRECACHE = ${JSON.stringify(urls)};`);
      writeFileSync(swPath, sw);
    },
  };
}

export default defineConfig({
  root,
  plugins: [precacheServiceWorker()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  server: { proxy: { '/v1': 'http://127.0.0.1:8080' } },
});
