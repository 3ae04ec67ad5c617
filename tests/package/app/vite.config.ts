// An outside developer's Vite config: nothing for the wasm. The one line is the offline app
// shell's (docs/api.md, "Offline app shell"): the service worker precaches what this manifest lists.
import { defineConfig } from 'vite';

export default defineConfig({
  build: { manifest: 'asset-manifest.json' },
});
