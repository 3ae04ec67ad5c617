// bench/lib: shared helpers for the benchmark suites (no dependency on the project's tests).
// Deterministic data (seeded PRNG), statistics, table printing, machine description.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(BENCH_DIR, '..');

/** mulberry32: small seeded PRNG so every run (and every peer) sees the same data. */
export function rng(seed = 42) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const now = () => performance.now();

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summarize(samples) {
  const s = Float64Array.from(samples).sort();
  const sum = s.reduce((a, b) => a + b, 0);
  return { n: s.length, mean: s.length ? sum / s.length : NaN, p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : NaN };
}

export function fmt(x, digits) {
  if (x === null || x === undefined) return '–';
  if (typeof x === 'string') return x;
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  const d = digits ?? (a >= 1000 ? 0 : a >= 100 ? 1 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
  return x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: 0 });
}

export const ratio = (a, b) => (b > 0 && Number.isFinite(a) && Number.isFinite(b) ? `${fmt(a / b, 2)}x` : '–');

/** Markdown table (also readable in a terminal). */
export function table(columns, rows) {
  const cells = [columns, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : String(c ?? '–'))))];
  const w = columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length), 3));
  const line = (r) => '| ' + r.map((c, i) => (c ?? '').padEnd(w[i])).join(' | ') + ' |';
  return [line(cells[0]), '| ' + w.map((n) => '-'.repeat(n)).join(' | ') + ' |', ...cells.slice(1).map(line)].join('\n');
}

export function gc() {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
}

function tryRun(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 }).trim();
  } catch {
    return null;
  }
}

export function machine() {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1].trim();
  } catch {
    /* not Linux */
  }
  const chromium = tryRun('/usr/bin/chromium', ['--headless', '--no-sandbox', '--version']) ?? tryRun('chromium', ['--version']);
  const emcc = tryRun('emcc', ['--version']);
  const gxx = tryRun('g++', ['--version']);
  let os_ = `${os.type()} ${os.release()}`;
  try {
    const m = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]+)"?$/m);
    if (m) os_ = `${m[1]} (kernel ${os.release()})`;
  } catch {
    /* ignore */
  }
  return {
    cpu,
    cores: os.cpus().length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: os_,
    node: process.version,
    chromium: chromium ? chromium.split('\n').pop().replace(/\s+/g, ' ') : 'not found',
    emcc: emcc ? emcc.split('\n')[0].replace(/^emcc \(Emscripten gcc\/clang-like replacement[^)]*\)\s*/, 'emcc ') : 'not found',
    gxx: gxx ? gxx.split('\n')[0] : 'not found',
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

/** Reads utime+stime (seconds) and RSS (bytes) of a process from /proc. */
export function procStats(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number((status.match(/^VmRSS:\s+(\d+)/m) || [0, 0])[1]) * 1024;
    return { cpuSec: ticks / 100, rss };
  } catch {
    return { cpuSec: NaN, rss: NaN };
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One target line: "met" / "not met (by how much)". */
export function target(name, met, detail) {
  return { name, met, detail };
}
