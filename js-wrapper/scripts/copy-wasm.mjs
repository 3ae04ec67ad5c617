// Finishes dist/ after tsc: the one place the package ships the engine from.
// - The Emscripten loader and .wasm (built by scripts/build.sh into build-wasm/web/) are copied
//   next to the compiled wasm.js, so `new URL('./syncline.wasm', import.meta.url)` resolves in
//   bundlers (Vite) with no app configuration. The package ships them once, in dist/; the
//   `syncline/wasm/syncline.wasm` export points there.
// - Outputs whose source is gone (a renamed or removed module) are deleted: tsc never removes
//   them, and `files: ["dist"]` would ship them.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const dist = join(pkg, 'dist');
const src = join(pkg, 'src');
const from = process.env.SYNCLINE_WASM_DIR ?? join(pkg, '..', 'build-wasm', 'web');
const ENGINE = ['syncline.mjs', 'syncline.wasm'];

mkdirSync(dist, { recursive: true });
for (const f of ENGINE) {
  if (existsSync(join(from, f))) copyFileSync(join(from, f), join(dist, f));
  else if (!existsSync(join(dist, f))) throw new Error(`copy-wasm: ${join(from, f)} is missing: run scripts/build.sh first`);
}

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const OUTPUT = /\.(d\.ts\.map|d\.ts|js\.map|js)$/;
for (const file of walk(dist)) {
  const rel = relative(dist, file);
  if (ENGINE.includes(rel)) continue;
  const m = OUTPUT.exec(rel);
  const stem = m ? rel.slice(0, -m[0].length) : null;
  if (stem !== null && (existsSync(join(src, stem + '.ts')) || existsSync(join(src, stem + '.tsx')))) continue;
  rmSync(file);
}
