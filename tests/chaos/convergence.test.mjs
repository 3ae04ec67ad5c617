// Layer: tests/chaos. Bounded CI version of the chaos convergence suite (harness.mjs):
// 20 Node clients + 2 chromium pages, ~60 s of nemesis, then the checks of harness.mjs, including
// counters and atomic groups: groups all-or-nothing, each counter = its initial value +
// the increments the server applied, every replica's counter = the server's, transfers conserve.
// Long version: `npm run chaos` (scripts/chaos.sh). A failure prints the seed and the rerun
// command; CHAOS_SEED / CHAOS_CI_SECONDS / CHAOS_CI_CLIENTS / CHAOS_CI_PAGES override the defaults
// here, CHAOS_STATIC_DIR the e2e harness build the pages load.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import test from 'node:test';
import { ChaosRun, report } from './harness.mjs';
import { CHROMIUM } from '../e2e/helpers.mjs';

const env = process.env;

test('chaos convergence: nothing lost, nothing applied twice, every replica equals the server, counters exact, groups all-or-nothing', { timeout: 400000 }, async () => {
  const opts = {
    // Fixed in CI so a failure is repeatable; `npm run chaos` draws a new seed each run.
    seed: env.CHAOS_SEED || '1795464104178',
    seconds: Number(env.CHAOS_CI_SECONDS || 60),
    clients: Number(env.CHAOS_CI_CLIENTS || 20),
    pages: existsSync(CHROMIUM) ? Number(env.CHAOS_CI_PAGES ?? 2) : 0,
    serverKillEveryS: [10, 18],
    clientKillEveryS: [2, 4],
    quietTimeoutS: 90,
    ...(env.CHAOS_STATIC_DIR ? { staticDir: env.CHAOS_STATIC_DIR } : {}),
    log: (...a) => console.log(...a),
  };
  const result = await new ChaosRun(opts).run();
  const rerun = `CHAOS_SEED=${result.seed} CHAOS_SECONDS=${opts.seconds} CHAOS_CLIENTS=${opts.clients} CHAOS_PAGES=${opts.pages} npm run chaos`;
  console.log(report(result, rerun));
  assert.deepEqual(result.violations, [], `chaos found ${result.violations.length} violation(s); seed ${result.seed}; rerun: ${rerun}`);
  assert.equal(result.lost, 0);
  assert.equal(result.duplicated, 0);
  assert.ok(result.operations.issued >= 200, `too few operations to mean anything: ${result.operations.issued}`);
  assert.ok(result.faults.server_kill9 >= 2, 'the server was killed at least twice');
  assert.ok(result.faults.client_kill9 >= 5, 'clients were killed');
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  assert.ok(result.increments.applied >= 100, `too few increments applied: ${JSON.stringify(result.increments)}`);
  assert.ok(sum(result.increments.rejected) >= 5, `increments were refused too (bounds, conditions): ${JSON.stringify(result.increments)}`);
  assert.ok(result.groups.applied >= 20 && sum(result.groups.rejected) >= 3, `groups both applied and refused: ${JSON.stringify(result.groups)}`);
});
