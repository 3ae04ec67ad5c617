// Layer: tests/chaos. Command-line entry of the chaos convergence suite (used by
// scripts/chaos.sh). Parameters through the environment:
//   CHAOS_SEED (default: time), CHAOS_SECONDS (300), CHAOS_CLIENTS (20), CHAOS_PAGES (2),
//   CHAOS_CUSTOMERS (5), CHAOS_SERVER_KILL_EVERY ("10,20" s), CHAOS_CLIENT_KILL_EVERY ("2,5" s),
//   CHAOS_LOG_RETENTION (0 = keep the whole log; >0 exercises reset), CHAOS_COUNTERS (4 counters;
//   0 = no counter writes), CHAOS_COUNTER_START (20), CHAOS_COUNTER_SHARE (0.3 of admin writes),
//   CHAOS_STATIC_DIR (the e2e harness build the pages load; default tests/e2e/app/dist),
//   CHAOS_JSON (path: also write the figures as JSON), CHAOS_KEEP=1 (keep the work dir on failure).
// Cluster mode (CHAOS_CLUSTER=1; lib/cluster.mjs): N nodes on one PostgreSQL behind HAProxy:
//   CHAOS_CLUSTER_NODES (3), CHAOS_NODE_KILL_EVERY ("3,6" s: kill -9 of a random node),
//   CHAOS_NODE_DOWN_MS ("1000,3000": until it is restarted on its port), CHAOS_PG_RESTARTS
//   (immediate-mode PostgreSQL restarts spread over the run; default one per started minute),
//   CHAOS_NODE_PAUSE_EVERY ("lo,hi" s; default none: SIGSTOP of a random node, 0.3-4 s, one in
//   five 11-14 s, past the nodes' 10 s group lock timeout), CHAOS_DB_PARTITION_EVERY ("lo,hi" s;
//   default none: a random node cut off from PostgreSQL for 2-8 s while it serves HTTP).
import { writeFileSync } from 'node:fs';
import { ChaosRun, report } from './harness.mjs';

const env = process.env;
const pair = (v, d) => (v ? v.split(',').map(Number) : d);
const opts = {
  seed: env.CHAOS_SEED || String(Date.now()),
  seconds: Number(env.CHAOS_SECONDS || 300),
  clients: Number(env.CHAOS_CLIENTS || 20),
  pages: Number(env.CHAOS_PAGES ?? 2),
  customers: Number(env.CHAOS_CUSTOMERS || 5),
  serverKillEveryS: pair(env.CHAOS_SERVER_KILL_EVERY, [10, 20]),
  clientKillEveryS: pair(env.CHAOS_CLIENT_KILL_EVERY, [2, 5]),
  quietTimeoutS: Number(env.CHAOS_QUIET_TIMEOUT || 120),
  logRetention: Number(env.CHAOS_LOG_RETENTION ?? 0),
  counters: Number(env.CHAOS_COUNTERS ?? 4),
  counterStart: Number(env.CHAOS_COUNTER_START ?? 20),
  counterShare: Number(env.CHAOS_COUNTER_SHARE ?? 0.3),
  ...(env.CHAOS_STATIC_DIR ? { staticDir: env.CHAOS_STATIC_DIR } : {}),
};
if (env.CHAOS_CLUSTER === '1') {
  opts.cluster = {
    nodes: Number(env.CHAOS_CLUSTER_NODES || 3),
    nodeKillEveryS: pair(env.CHAOS_NODE_KILL_EVERY, [3, 6]),
    nodeDownMs: pair(env.CHAOS_NODE_DOWN_MS, [1000, 3000]),
    pgRestarts: Number(env.CHAOS_PG_RESTARTS ?? Math.max(1, Math.ceil(opts.seconds / 60))),
    nodePauseEveryS: pair(env.CHAOS_NODE_PAUSE_EVERY, null),
    dbPartitionEveryS: pair(env.CHAOS_DB_PARTITION_EVERY, null),
  };
}
const result = await new ChaosRun(opts).run();
const rerun = `${opts.cluster ? 'CHAOS_CLUSTER=1 ' : ''}CHAOS_SEED=${result.seed} CHAOS_SECONDS=${opts.seconds} CHAOS_CLIENTS=${opts.clients} CHAOS_PAGES=${opts.pages} npm run chaos`;
console.log(report(result, rerun));
if (env.CHAOS_JSON) writeFileSync(env.CHAOS_JSON, JSON.stringify(result, null, 2));
process.exit(result.violations.length ? 1 : 0);
