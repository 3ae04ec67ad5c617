#!/usr/bin/env bash
# Long chaos convergence run (tests/chaos/harness.mjs, docs/reliability-chaos.md): `npm run chaos`.
# Parameters (environment): CHAOS_SECONDS (default 300), CHAOS_CLIENTS (20), CHAOS_PAGES (2),
# CHAOS_CUSTOMERS (5), CHAOS_SEED (default: time), CHAOS_RUNS (1: runs with seeds SEED, SEED+1, ...),
# CHAOS_LOG_RETENTION (0), CHAOS_SERVER_KILL_EVERY ("10,20" s), CHAOS_CLIENT_KILL_EVERY ("2,5" s),
# CHAOS_COUNTERS (4; 0 = no counter writes), CHAOS_COUNTER_START (20), CHAOS_COUNTER_SHARE (0.3),
# CHAOS_STATIC_DIR (e2e harness build for the pages), CHAOS_JSON (write the figures of the last
# run there), CHAOS_KEEP=1 (keep the work dir on failure).
# CHAOS_CLUSTER=1: the same run against a cluster (tests/chaos/lib/cluster.mjs): 3 nodes on a
# throwaway PostgreSQL behind HAProxy, random node kill -9s and PostgreSQL crashes
# (CHAOS_CLUSTER_NODES, CHAOS_NODE_KILL_EVERY "3,6" s, CHAOS_NODE_DOWN_MS "1000,3000",
# CHAOS_PG_RESTARTS: one per started minute). SYNCLINE_SERVER_BIN: the server binary to copy.
# Prints the figures of every run; exits non-zero on the first violation, with the seed to rerun.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x "${SYNCLINE_SERVER_BIN:-build/server/syncline-server}" ] && [ -f js-wrapper/dist/syncline.wasm ] || bash scripts/build.sh || exit 1

runs=${CHAOS_RUNS:-1}
seed=${CHAOS_SEED:-$(date +%s)}
for ((i = 0; i < runs; i++)); do
  s=$seed
  [[ "$seed" =~ ^[0-9]+$ ]] && s=$((seed + i))
  echo "=== chaos run $((i + 1))/$runs, seed $s${CHAOS_CLUSTER:+ (cluster)}"
  CHAOS_SEED=$s node tests/chaos/run.mjs || { echo "chaos: FAILED with seed $s (rerun: ${CHAOS_CLUSTER:+CHAOS_CLUSTER=$CHAOS_CLUSTER }CHAOS_SEED=$s npm run chaos)"; exit 1; }
done
