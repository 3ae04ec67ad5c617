#!/usr/bin/env bash
# Sanitizers (docs/reliability.md): the native core tests under AddressSanitizer + UBSan.
#
#   scripts/sanitize.sh --ci   bounded run for CI: SYNCLINE_SIM_SEEDS=40 simulation seeds
#   scripts/sanitize.sh        full run (the simulation's default seed count)
#
# Builds core_tests into build-asan/ (separate from build/, so the normal build is untouched)
# with -fsanitize=address,undefined -fno-sanitize-recover=all at -O1, runs it, and exits
# non-zero if a test fails or a sanitizer reports anything (every report aborts the process,
# and the log is also scanned for report headers in case a report does not abort).
set -uo pipefail
cd "$(dirname "$0")/.."

CI=0
for arg in "$@"; do
  case "$arg" in
    --ci) CI=1 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "[sanitize] unknown argument: $arg" >&2; exit 2 ;;
  esac
done

JOBS=${SYNCLINE_JOBS:-$(nproc)}
BUILD=build-asan
SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
LOG=$BUILD/core_tests.log
start=$SECONDS

echo "[sanitize] configuring $BUILD (ASan+UBSan, -O1 -g)"
if [ ! -f $BUILD/build.ninja ]; then
  cmake -S . -B $BUILD -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_CXX_FLAGS="$SAN_FLAGS" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DSYNCLINE_BUILD_SERVER=OFF >/dev/null || { echo "[sanitize] cmake configure failed"; exit 1; }
fi
if ! cmake --build $BUILD -j "$JOBS" --target core_tests; then
  echo "[sanitize] build failed"
  exit 1
fi
build_s=$((SECONDS - start))

# halt_on_error: the first report aborts the run; detect_leaks: LeakSanitizer at exit;
# strict_string_checks and detect_stack_use_after_return catch more misuse at little cost.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1"
if [ "$CI" = 1 ]; then
  export SYNCLINE_SIM_SEEDS=${SYNCLINE_SIM_SEEDS:-40}
fi
seeds=${SYNCLINE_SIM_SEEDS:-200 (default)}

echo "[sanitize] running core_tests (SYNCLINE_SIM_SEEDS=$seeds)"
run_start=$SECONDS
./$BUILD/core_tests --gtest_brief=1 >"$LOG" 2>&1
rc=$?
run_s=$((SECONDS - run_start))

reports=$(grep -cE "^(==[0-9]+==ERROR: (Address|Leak)Sanitizer|.*runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer)" "$LOG")
tests_line=$(grep -E "^\[==========\] [0-9]+ tests? from" "$LOG" | tail -1)
passed_line=$(grep -E "^\[  PASSED  \]" "$LOG" | tail -1)
failed_line=$(grep -E "^\[  FAILED  \] [0-9]+ test" "$LOG" | tail -1)

echo "[sanitize] ---- summary ----"
echo "[sanitize] build: ${build_s} s, run: ${run_s} s, exit code: $rc"
echo "[sanitize] ${tests_line#\[==========\] }"
[ -n "$passed_line" ] && echo "[sanitize] passed: ${passed_line#\[  PASSED  \] }"
[ -n "$failed_line" ] && echo "[sanitize] failed: ${failed_line#\[  FAILED  \] }"
echo "[sanitize] sanitizer reports: $reports"

if [ "$rc" -ne 0 ] || [ "$reports" -ne 0 ]; then
  echo "[sanitize] FAILED; log: $LOG. Relevant lines:"
  grep -nE "ERROR: |runtime error:|SUMMARY:|^\[  FAILED  \]|simulation failed with seed" "$LOG" | head -40
  exit 1
fi
echo "[sanitize] clean"
