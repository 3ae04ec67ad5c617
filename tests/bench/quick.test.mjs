// Keeps the benchmarks from rotting: runs `node bench/run.mjs --quick` as a child process and
// checks that every benchmark ran and printed its table, and that the numbers are sane
// (finite, non-negative; the headline figures positive). No speed assertions: these are
// measurements, judged in docs/benchmarks.md, never in CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function runQuick(jsonPath) {
  return new Promise((res) => {
    const child = spawn(process.execPath, [join(ROOT, 'bench', 'run.mjs'), '--quick', `--json=${jsonPath}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    // run.mjs bounds every suite itself; this is the last resort.
    const timer = setTimeout(() => child.kill('SIGTERM'), 240_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, out, err });
    });
  });
}

test('npm run bench -- --quick runs every benchmark and reports sane numbers', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-bench-test-'));
  try {
    const r = await runQuick(join(dir, 'results.json'));
    assert.equal(r.code, 0, `bench exited with ${r.code ?? r.signal}\n${r.out.slice(-3000)}\n${r.err.slice(-3000)}`);
    assert.doesNotMatch(r.out, /wrote .*benchmarks\.md/, 'quick mode must not write docs/benchmarks.md');

    const titles = [
      '1. Apply remote changes',
      '2. Boundary crossing and JSON decoding',
      '3. Server fan-out',
      '4. End to end in Chromium',
      '5. Cold start in Chromium',
      '6. Size and memory',
      '7. Scale-out',
      '8. Live SQL in Chromium',
    ];
    for (const t of titles) {
      const at = r.out.indexOf(`## ${t}`);
      assert.ok(at >= 0, `missing section "${t}"`);
      assert.match(r.out.slice(at, at + 20000), /\n\| .+ \|\n\| -+ \|/, `section "${t}" has no table`);
    }
    assert.match(r.out, /summary of targets/);

    const { results, failures } = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    assert.deepEqual(failures, []);
    assert.deepEqual(results.map((x) => x.id), ['apply', 'boundary', 'fanout', 'e2e', 'cold', 'size', 'cluster', 'sql']);
    for (const res of results) {
      assert.ok(res.targets.length > 0, `${res.id}: no targets`);
      for (const t of res.targets) assert.equal(typeof t.met, 'boolean', `${res.id}: target without a verdict`);
      for (const tbl of res.tables) {
        assert.ok(tbl.rows.length > 0, `${res.id}: empty table`);
        for (const row of tbl.rows) {
          assert.equal(row.length, tbl.columns.length, `${res.id}: ragged row`);
          for (const cell of row) {
            if (typeof cell === 'number') assert.ok(Number.isFinite(cell) && cell >= 0, `${res.id}: bad number ${cell} in ${JSON.stringify(row)}`);
            else assert.doesNotMatch(String(cell), /NaN|Infinity|undefined/, `${res.id}: bad cell in ${JSON.stringify(row)}`);
          }
        }
      }
    }
    const by = Object.fromEntries(results.map((x) => [x.id, x.metrics]));
    const positive = {
      'apply syncline msgs/s': by.apply.synclineRate,
      'apply syncline msgs/s, detail off': by.apply.synclineLeanRate,
      'apply JSON.parse msgs/s': by.apply.floorRate,
      'apply TinyBase msgs/s': by.apply.tinybaseRate,
      'apply RxDB msgs/s': by.apply.rxdbRate,
      'apply plain JS msgs/s': by.apply.plainRate,
      'boundary µs per message (batch)': by.boundary.perBatchUs,
      'boundary µs per message (one by one)': by.boundary.perOneUs,
      'receive decoder / JSON.parse ratio': by.boundary.decodeRatio,
      // The first step's rate (the peak needs a step under the p99 limit, which a loaded
      // machine may not give).
      'fan-out syncline deliveries/s': by.fanout.steps.syncline.rows[0].perSec,
      'fan-out Node deliveries/s': by.fanout.steps.node.rows[0].perSec,
      'size gzip bytes': by.size.totalGzip,
      'size as an app ships it, gzip bytes': by.size.shippedGzip,
      'size as an app ships it, brotli bytes': by.size.shippedBrotli,
      'heap bytes per 100k docs': by.size.heapPer100k,
      'heap top / raw JSON': by.size.heapTopFactor,
      'live allocations / raw JSON': by.size.heapInUseFactor,
    };
    for (const row of by.e2e.rows) positive[`e2e ${row.path} p50`] = row.p50;
    for (const k of ['sql-top', 'sql-join', 'engine-top', 'engine-join', 'plain-top', 'plain-join', 'query-top', 'query-join']) positive[`live SQL ${k} p50`] = by.sql[k];
    for (const k of ['syncline', 'synclineFromScript', 'dexie', 'dexieIndexed']) for (const v of by.cold[k]) positive[`cold start ${k}`] = v;
    for (const [name, v] of Object.entries(positive)) assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${name} = ${v}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
