// Browser fault-injection helpers (crash, storage and leader tests). Reuses the e2e harness page
// (tests/e2e/app/dist) and the e2e helpers. Every process started here is stopped by the test
// that started it, by its own pid / process group.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, sleep } from '../e2e/helpers.mjs';

export * from '../e2e/helpers.mjs';

export const LONG = process.env.BROWSER_FAULTS_LONG === '1';
export const CHROME_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Small deterministic PRNG (mulberry32) so a failing round can be replayed from its seed. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) };
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export function makeProfileDir() {
  return mkdtempSync(join(tmpdir(), 'syncline-bf-profile-'));
}

/**
 * Spawns chromium itself (its own process group) on a persistent profile, so the whole browser
 * can be SIGKILLed like a power cut of the process, and IndexedDB survives for the next launch.
 */
export async function spawnChromium(userDataDir) {
  const proc = spawn(CHROMIUM, [
    '--headless', ...CHROME_FLAGS, '--remote-debugging-port=0', `--user-data-dir=${userDataDir}`, 'about:blank',
  ], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  let stderr = '';
  const wsUrl = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`chromium did not start: ${stderr}`)), 20000);
    proc.stderr.on('data', (c) => {
      stderr += c.toString();
      const m = stderr.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    proc.on('exit', () => {
      clearTimeout(timer);
      rej(new Error(`chromium exited early: ${stderr}`));
    });
  });
  // What chromium says about its storage (a database it found damaged and discarded, ...).
  const storageLog = [];
  proc.stderr.on('data', (c) => {
    for (const line of c.toString().split('\n')) if (/indexeddb|indexed_db|leveldb|corrupt/i.test(line) && storageLog.length < 20) storageLog.push(line.slice(0, 300));
  });
  proc.stderr.resume();
  const browser = await chromium.connectOverCDP(wsUrl);
  const context = browser.contexts()[0];
  return {
    proc,
    browser,
    context,
    storageLog,
    /** SIGKILL to the browser's whole process group: browser, renderers, storage, network. */
    async kill() {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
      // The main process exiting does not mean the group is gone: a renderer or the storage
      // service still holding the profile's files would meet the next launch on the same
      // profile, which a real restart after a crash never does.
      for (let i = 0; i < 200 && groupAlive(proc.pid); i++) await sleep(25);
      await browser.close().catch(() => {});
    },
    async close() {
      await browser.close().catch(() => {});
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    },
  };
}

/** Launches the e2e helper's kind of browser (non-persistent) but keeps a handle to kill it. */
export async function launch() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROME_FLAGS });
  return { browser, close: () => browser.close().catch(() => {}) };
}

/** Opens the harness page without starting a client. */
export async function openBlank(context, server) {
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e));
  p.errors = errors;
  await p.goto(`${server.url}/harness.html`);
  await p.waitForFunction(() => window.harnessReady === true);
  return p;
}

export function stats(values) {
  if (!values.length) return { n: 0, p50: null, p95: null, max: null };
  const s = [...values].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))];
  return { n: s.length, p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}

export async function appliedCounts(server) {
  const t = await (await fetch(`${server.url}/metrics`)).text();
  const get = (status) => {
    const line = t.split('\n').find((l) => l.startsWith(`syncline_mutations_total{status="${status}"}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  return { applied: get('applied'), rejected: get('rejected'), duplicate: get('duplicate') };
}

export { rmSync, sleep };
