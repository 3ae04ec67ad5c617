#!/usr/bin/env bash
# Runs every suite: native core (GoogleTest), sanitizers, fuzz (bounded), wasm, server, js,
# e2e (chromium), chaos (bounded), bench quick mode, then the server and security suites again
# on PostgreSQL. Exits non-zero if any suite fails and prints a final "suites: N passed, N
# failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit 1
bash scripts/build.sh || exit 1

passed=0
failed=0
failed_names=()
run_suite() {
  local name=$1; shift
  echo
  echo "=== suite: $name"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "=== $name: FAILED ($((SECONDS - start)) s)"
  fi
}

run_suite core ./build/core_tests --gtest_brief=1
[ -x ./build/server/server_tests ] && run_suite server-native ./build/server/server_tests --gtest_brief=1
[ -f scripts/sanitize.sh ] && run_suite sanitizers bash scripts/sanitize.sh --ci
[ -f scripts/fuzz.sh ] && run_suite fuzz bash scripts/fuzz.sh --ci
# The dir's test files, then those one level of subdirectories down (e.g. js-wrapper/runtime),
# into the array `files`.
test_files() {
  files=()
  for f in "$1"/*.test.mjs "$1"/*/*.test.mjs; do [ -f "$f" ] && files+=("$f"); done
}
for dir in tests/wasm tests/js-wrapper tests/package tests/server tests/e2e tests/security tests/cluster tests/browser-faults tests/chaos tests/bench; do
  test_files "$dir"
  if [ ${#files[@]} -gt 0 ]; then
    run_suite "$dir" node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
  fi
done
# The server protocol suites again on PostgreSQL: each server gets a fresh database on a
# throwaway PostgreSQL 15 cluster the test process starts itself (tests/lib/postgres.mjs); the
# processes copy one initdb'd data directory kept in SYNCLINE_PG_CACHE for this run.
pg_cache=$(mktemp -d)
for dir in tests/server tests/security; do
  test_files "$dir"
  if [ ${#files[@]} -gt 0 ]; then
    run_suite "$dir (postgresql)" env SYNCLINE_TEST_BACKEND=postgres SYNCLINE_PG_CACHE="$pg_cache" \
      node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
  fi
done
# Tenant isolation once more against a cluster: three nodes on one PostgreSQL behind HAProxy.
run_suite "tests/security tenant isolation (cluster)" env SYNCLINE_TEST_CLUSTER=1 SYNCLINE_PG_CACHE="$pg_cache" \
  node --test --test-concurrency=1 --test-timeout=600000 tests/security/tenant_isolation.test.mjs
rm -rf "$pg_cache"

echo
[ "$failed" -gt 0 ] && echo "failed suites: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
