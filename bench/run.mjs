// `npm run bench`: every benchmark (bench/README.md), each against its peers in the same run.
//   node bench/run.mjs            full run, writes docs/benchmarks.md
//   node bench/run.mjs --quick    small sizes (< 2 min), prints only (add --write to write)
//   node bench/run.mjs --only=apply,sql    a subset (prints only unless --write)
//   node bench/run.mjs --json=PATH  also dump the raw results (used by tests/bench)
// Peers are installed into bench/node_modules from bench/package-lock.json on first use.
// Each suite runs in its own child process; servers and browsers it starts are stopped by it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, machine, REPO_ROOT, table } from './lib/common.mjs';
import { writeReport } from './lib/report.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = (args.find((a) => a.startsWith('--only=')) ?? '').slice(7).split(',').filter(Boolean);
const jsonOut = (args.find((a) => a.startsWith('--json=')) ?? '').slice(7);
const write = args.includes('--write') || (!quick && only.length === 0);
const SUITES = ['apply', 'boundary', 'fanout', 'browser', 'size', 'cluster', 'sql'];
const suites = only.length ? SUITES.filter((s) => only.includes(s)) : SUITES;
const LIMIT_S = { apply: 400, boundary: 200, fanout: 400, browser: 600, size: 120, cluster: 300, sql: 400 };

function sh(cmd, cmdArgs, opts = {}) {
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', cwd: REPO_ROOT, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} failed (${r.status ?? r.signal})`);
}

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

function setup() {
  // 1. Peers (pinned in bench/package.json / package-lock.json).
  if (!existsSync(join(BENCH_DIR, 'node_modules', 'tinybase')) || !existsSync(join(BENCH_DIR, 'node_modules', 'rxdb')) || !existsSync(join(BENCH_DIR, 'node_modules', 'dexie'))) {
    console.log('[bench] installing peers into bench/node_modules');
    const lock = existsSync(join(BENCH_DIR, 'package-lock.json'));
    sh('npm', [lock ? 'ci' : 'install', '--prefix', BENCH_DIR, '--no-audit', '--no-fund', '--ignore-scripts']);
  }
  // 2. The project's build outputs (built by the project's own build script when missing).
  const need = [join(REPO_ROOT, 'js-wrapper', 'dist', 'index.js'), join(REPO_ROOT, 'js-wrapper', 'dist', 'syncline.wasm'), join(REPO_ROOT, 'build', 'server', 'syncline-server')];
  if (need.some((p) => !existsSync(p))) {
    console.log('[bench] build outputs missing: running scripts/build.sh');
    sh('bash', ['scripts/build.sh'], { env: { ...process.env, SYNCLINE_SKIP_DEMO: '1' } });
  }
  // 3. The Chromium page bundle (Vite), rebuilt when its sources or the package changed.
  if (suites.includes('browser') || suites.includes('sql')) {
    const out = join(BENCH_DIR, 'browser', 'dist', 'sql.html');
    const pkg = ['index.js', 'syncline.wasm', 'client.js', 'sqlite/index.js', 'sqlite/worker.js', 'sqlite/mirror.js'].map((f) => mtime(join(REPO_ROOT, 'js-wrapper', 'dist', f)));
    const newest = Math.max(...['main.js', 'index.html', 'sql.js', 'sql.html', 'vite.config.mjs'].map((f) => mtime(join(BENCH_DIR, 'browser', f))), ...pkg);
    if (mtime(out) < newest) {
      console.log('[bench] building the Chromium page bundle (vite)');
      sh(process.execPath, ['-e', `import('vite').then((v) => v.build({ configFile: ${JSON.stringify(join(BENCH_DIR, 'browser', 'vite.config.mjs'))} }))`]);
    }
  }
}

const children = new Set();
const killChildren = () => {
  for (const pid of children) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
};
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killChildren();
    process.exit(130);
  });
}

function runSuite(name, dir) {
  const out = join(dir, `${name}.json`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=4096', join(BENCH_DIR, 'lib', 'child.mjs'), name, out, ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'inherit', 'inherit'], cwd: REPO_ROOT, detached: true });
    children.add(child.pid);
    const limit = (quick ? 110 : LIMIT_S[name]) * 1000;
    // Kill the whole process group (the suite and any server/browser it started) on timeout.
    const timer = setTimeout(() => {
      console.error(`[bench] ${name}: over ${limit / 1000} s, stopping it`);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, limit);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Anything the suite left behind in its process group goes too.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* nothing left */
      }
      children.delete(child.pid);
      if (code === 0 && existsSync(out)) resolve({ ok: true, results: JSON.parse(readFileSync(out, 'utf8')) });
      else resolve({ ok: false, error: `${name} exited with ${code ?? signal}` });
    });
  });
}

const started = performance.now();
setup();
const info = machine();
console.log(`[bench] ${quick ? 'quick' : 'full'} run on ${info.cpu}, ${info.cores} cores, ${info.memory}; node ${info.node}; ${info.chromium}`);
const tmp = mkdtempSync(join(tmpdir(), 'syncline-bench-results-'));
const all = [];
const failures = [];
for (const name of suites) {
  const t0 = performance.now();
  console.log(`\n[bench] ${name} ...`);
  const r = await runSuite(name, tmp);
  if (!r.ok) {
    failures.push(r.error);
    console.error(`[bench] FAILED: ${r.error}`);
    continue;
  }
  for (const res of r.results) {
    all.push(res);
    console.log(`\n## ${res.title}\n${res.setup}\n`);
    for (const t of res.tables) console.log(table(t.columns, t.rows) + '\n');
    for (const tg of res.targets) console.log(`target: ${tg.name}: ${tg.met ? 'met' : 'NOT MET'} — ${tg.detail}`);
  }
  console.log(`[bench] ${name} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
rmSync(tmp, { recursive: true, force: true });
const seconds = (performance.now() - started) / 1000;
console.log('\n[bench] summary of targets');
for (const res of all) for (const tg of res.targets) console.log(`  ${tg.met ? 'met    ' : 'NOT MET'}  ${tg.name} — ${tg.detail}`);
console.log(`[bench] ${all.length} benchmarks, ${failures.length} failed, ${seconds.toFixed(0)} s`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ info, results: all, failures, seconds }, null, 1));
if (write && failures.length === 0) {
  const path = join(REPO_ROOT, 'docs', 'benchmarks.md');
  writeFileSync(path, writeReport({ info, results: all, quick, seconds }));
  console.log(`[bench] wrote ${path}`);
} else if (write) {
  console.log('[bench] not writing docs/benchmarks.md: a suite failed');
}
process.exit(failures.length ? 1 : 0);
