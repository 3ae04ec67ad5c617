// The Emscripten loader is plain JS: ship it next to the compiled TypeScript so that
// `new URL('./syncline.wasm', import.meta.url)` resolves in bundlers (Vite) with no app config.
import { copyFileSync, mkdirSync } from 'node:fs';
const here = new URL('..', import.meta.url);
mkdirSync(new URL('dist/', here), { recursive: true });
for (const f of ['syncline.mjs', 'syncline.wasm']) {
  copyFileSync(new URL(`wasm/${f}`, here), new URL(`dist/${f}`, here));
}
