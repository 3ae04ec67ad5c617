// Builds the e2e harness pages exactly as an app would consume the package: through the
// package name, with no wasm-specific configuration.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
export default defineConfig({
  root: here,
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    rollupOptions: { input: { harness: `${here}/harness.html`, react: `${here}/react.html`, sql: `${here}/sql.html` } },
  },
});
