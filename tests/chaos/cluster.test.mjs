// Layer: tests/chaos. Bounded CI version of the chaos convergence suite in cluster mode
// (harness.mjs with lib/cluster.mjs): 3 syncline-server nodes on one throwaway PostgreSQL behind
// a real HAProxy (the settings of scripts/cluster.sh, scripts/lib/haproxy-config.mjs), 20 Node
// clients + 2 chromium pages through the nemesis proxy in front of HAProxy, ~60 s of nemesis:
// kill -9 of a random node every 3-6 s (back on its port 1-3 s later), PostgreSQL crashed and
// restarted (pg_ctl -m immediate) twice, plus the single-server suite's client kills, offline
// periods, page reloads, connection and stream cuts, dropped and duplicated mutation requests.
// Then the same checks as convergence.test.mjs, against the database's own log: nothing lost,
// nothing applied twice, every replica equals the server, counters exact, groups all-or-nothing,
// the auditor's stream and every Node client's streams equal to the log with no gap or repeat
// across failovers, every node caught up to the database's head.
// Long version: CHAOS_CLUSTER=1 npm run chaos. CHAOS_SEED / CHAOS_CI_SECONDS / CHAOS_CI_CLIENTS /
// CHAOS_CI_PAGES / CHAOS_CI_PG_RESTARTS override the defaults here, CHAOS_STATIC_DIR the e2e
// harness build the pages load.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import test from 'node:test';
import { ChaosRun, report } from './harness.mjs';
import { CHROMIUM } from '../e2e/helpers.mjs';

const env = process.env;

test('chaos convergence on a cluster: node kill -9s and PostgreSQL crashes lose nothing, apply nothing twice, every log equals the database\'s', { timeout: 900000 }, async () => {
  const opts = {
    // Fixed in CI so a failure is repeatable; `CHAOS_CLUSTER=1 npm run chaos` draws a new seed each run.
    seed: env.CHAOS_SEED || '1796300000001',
    seconds: Number(env.CHAOS_CI_SECONDS || 60),
    clients: Number(env.CHAOS_CI_CLIENTS || 20),
    pages: existsSync(CHROMIUM) ? Number(env.CHAOS_CI_PAGES ?? 2) : 0,
    clientKillEveryS: [2, 4],
    quietTimeoutS: 120,
    cluster: { nodes: 3, nodeKillEveryS: [3, 6], nodeDownMs: [1000, 3000], pgRestarts: Number(env.CHAOS_CI_PG_RESTARTS || 2) },
    ...(env.CHAOS_STATIC_DIR ? { staticDir: env.CHAOS_STATIC_DIR } : {}),
    log: (...a) => console.log(...a),
  };
  const result = await new ChaosRun(opts).run();
  const rerun = `CHAOS_CLUSTER=1 CHAOS_SEED=${result.seed} CHAOS_SECONDS=${opts.seconds} CHAOS_CLIENTS=${opts.clients} CHAOS_PAGES=${opts.pages} CHAOS_PG_RESTARTS=${opts.cluster.pgRestarts} npm run chaos`;
  console.log(report(result, rerun));
  assert.deepEqual(result.violations, [], `chaos found ${result.violations.length} violation(s); seed ${result.seed}; rerun: ${rerun}`);
  assert.equal(result.lost, 0);
  assert.equal(result.duplicated, 0);
  assert.ok(result.operations.issued >= 200, `too few operations to mean anything: ${result.operations.issued}`);
  assert.ok(result.faults.node_kill9 >= 3, `nodes were killed at least 3 times: ${result.faults.node_kill9}`);
  assert.ok(result.faults.pg_restart >= 1 && result.cluster.pg_restarts >= 1, 'PostgreSQL was crashed and restarted');
  assert.ok(result.faults.client_kill9 >= 5, 'clients were killed');
  assert.equal(result.auditor.gaps + result.auditor.repeats, 0);
  const s = result.client_streams;
  assert.equal(s.gaps + s.repeats + s.differing + s.cursor_faults, 0);
  assert.ok(s.changes_compared >= 1000, `the clients' streams delivered too few changes to compare: ${JSON.stringify(s)}`);
  assert.ok(s.resumes_on_another_node >= 5, `streams resumed on another node: ${s.resumes_on_another_node}`);
  assert.ok(Object.keys(s.nodes).length === 3, `streams were served by every node: ${JSON.stringify(s.nodes)}`);
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  assert.ok(result.increments.applied >= 100, `too few increments applied: ${JSON.stringify(result.increments)}`);
  assert.ok(sum(result.increments.rejected) >= 5, `increments were refused too (bounds, conditions): ${JSON.stringify(result.increments)}`);
  assert.ok(result.groups.applied >= 20 && sum(result.groups.rejected) >= 3, `groups both applied and refused: ${JSON.stringify(result.groups)}`);
});
