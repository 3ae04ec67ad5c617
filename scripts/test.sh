#!/usr/bin/env bash
# Runs every suite: native core (GoogleTest), wasm (node:test), server, e2e (chromium).
# Exits non-zero if any suite fails; prints a final "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit 1
bash scripts/build.sh || exit 1

passed=0
failed=0
run_suite() {
  local name=$1; shift
  echo
  echo "=== suite: $name"
  if "$@"; then passed=$((passed + 1)); echo "=== $name: ok"; else failed=$((failed + 1)); echo "=== $name: FAILED"; fi
}

run_suite core ./build/core_tests --gtest_brief=1
for dir in tests/wasm tests/server tests/js tests/e2e; do
  if compgen -G "$dir/*.test.mjs" >/dev/null; then
    run_suite "$dir" node --test --test-concurrency=1 "$dir"/*.test.mjs
  fi
done

echo
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
