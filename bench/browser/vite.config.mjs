// Builds the Chromium benchmark pages: `syncline`, `syncline/sqlite` and `dexie` resolved by
// package name. index.html: end to end and cold start; sql.html: live SQL.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
export default defineConfig({
  root: here,
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: { input: { index: `${here}/index.html`, sql: `${here}/sql.html` } },
  },
});
