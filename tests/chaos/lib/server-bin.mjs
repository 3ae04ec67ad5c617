// Layer: tests/chaos. Imported before tests/server/helpers.mjs: runs the suite against a private
// copy of build/server/syncline-server, so a rebuild of the shared build tree during a long
// chaos run (the binary briefly missing or not executable) cannot fail a server restart.
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = process.env.SYNCLINE_SERVER_BIN || resolve(here, '..', '..', '..', 'build', 'server', 'syncline-server');

function copyStable() {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-chaos-bin-'));
  const dest = join(dir, 'syncline-server');
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      copyFileSync(source, dest);
      chmodSync(dest, 0o755);
      return dest;
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  return source;
}

if (!process.env.SYNCLINE_CHAOS_SERVER_BIN && existsSync(source)) process.env.SYNCLINE_CHAOS_SERVER_BIN = copyStable();
if (process.env.SYNCLINE_CHAOS_SERVER_BIN) process.env.SYNCLINE_SERVER_BIN = process.env.SYNCLINE_CHAOS_SERVER_BIN;
