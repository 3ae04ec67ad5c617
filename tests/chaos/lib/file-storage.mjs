// Layer: tests/chaos. A file-backed `localStorage` for Node child processes running the real
// runtime with persistence: 'localstorage'. One file per key; setItem writes a temp file, fsyncs
// it and renames it over the old one, so a process killed with SIGKILL at any instant leaves
// every key either at its old or at its new value (the same per-key atomicity a browser gives).
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const enc = (key) => Buffer.from(key, 'utf8').toString('base64url');
const dec = (name) => Buffer.from(name, 'base64url').toString('utf8');

export class FileStorage {
  constructor(dir, { fsync = true } = {}) {
    this.dir = dir;
    this.fsync = fsync;
    this.cache = new Map();
    this.writes = 0;
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.tmp')) {
        rmSync(join(dir, name), { force: true }); // a write that never reached its rename
        continue;
      }
      this.cache.set(dec(name), readFileSync(join(dir, name), 'utf8'));
    }
  }

  get length() {
    return this.cache.size;
  }

  key(i) {
    return [...this.cache.keys()][i] ?? null;
  }

  getItem(key) {
    const v = this.cache.get(String(key));
    return v === undefined ? null : v;
  }

  setItem(key, value) {
    key = String(key);
    value = String(value);
    const file = join(this.dir, enc(key));
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, value);
      if (this.fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    this.cache.set(key, value);
    this.writes++;
  }

  removeItem(key) {
    key = String(key);
    rmSync(join(this.dir, enc(key)), { force: true });
    this.cache.delete(key);
  }

  clear() {
    for (const k of [...this.cache.keys()]) this.removeItem(k);
  }
}
