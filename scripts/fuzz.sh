#!/usr/bin/env bash
# Fuzzing (docs/reliability.md, tests/fuzz/README.md): libFuzzer targets over src/core and the
# server's request path (server_request), under ASan + UBSan (clang-14).
#
#   scripts/fuzz.sh --ci          build, replay corpora + crashers, then fuzz each target for
#                                 FUZZ_CI_SECONDS (default 20) seconds; exit 1 on any crash
#   scripts/fuzz.sh               (npm run fuzz) the same, fuzzing each target for FUZZ_SECONDS
#                                 (default 600) seconds
#   scripts/fuzz.sh --replay      build and replay only
#   FUZZ_TARGETS="filter ws_path" restrict to some targets; FUZZ_JOBS parallel fuzzers (nproc)
#   FUZZ_SEED=N                   libFuzzer seed of the first target (the others get N+1, N+2, ...);
#                                 --ci defaults to 2026 so a CI failure replays, long runs to random
#   FUZZ_SRC=/tmp/tree/src FUZZ_OUT=build-fuzz-patched   fuzz a patched copy of the core (to check a
#                                 proposed fix before it lands) without touching src/ or build-fuzz/
#   FUZZ_SERVER_SRC=/tmp/tree/server   the same for the server sources of server_request
#
# Layout: tests/fuzz/fuzz_<target>.cpp (one LLVMFuzzerTestOneInput each), seed corpora in
# tests/fuzz/corpus/<target>/, every crasher ever found in tests/fuzz/crashers/<target>/,
# dictionaries in tests/fuzz/dict/. Build products and the growing working corpora live in
# build-fuzz/ (the repository's corpora stay small and hand-written). A crash found here is saved
# under build-fuzz/artifacts/<target>/; copy it into tests/fuzz/crashers/<target>/ with the fix.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=long
for arg in "$@"; do
  case "$arg" in
    --ci) MODE=ci ;;
    --replay) MODE=replay ;;
    -h|--help) sed -n 2,21p "$0"; exit 0 ;;
    *) echo "[fuzz] unknown argument: $arg" >&2; exit 2 ;;
  esac
done

ALL_TARGETS=(protocol_decode filter mutation_apply engine_ops sse_stream ws_path engine_restore server_request)
read -r -a TARGETS <<<"${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"
if [ "$MODE" = ci ]; then SECONDS_EACH=${FUZZ_CI_SECONDS:-20}; SEED_BASE=${FUZZ_SEED:-2026}; else SECONDS_EACH=${FUZZ_SECONDS:-600}; SEED_BASE=${FUZZ_SEED:-0}; fi
JOBS=${FUZZ_JOBS:-$(nproc)}
OUT=${FUZZ_OUT:-build-fuzz}
SRC=${FUZZ_SRC:-src}
start_all=$SECONDS

# ---------------------------------------------------------------- toolchain
# clang-14 ships with emscripten; libFuzzer and the sanitizer runtimes are in libclang-rt-14-dev.
need=()
for p in clang-14 libclang-rt-14-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then need+=("$p"); fi
done
if ((${#need[@]})); then
  echo "[fuzz] installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "[fuzz] could not install ${need[*]}"; exit 1; }
fi
CXX=${FUZZ_CXX:-$(command -v clang++-14 || echo /usr/lib/llvm-14/bin/clang++)}
[ -x "$CXX" ] || { echo "[fuzz] clang++-14 not found"; exit 1; }

# ---------------------------------------------------------------- build
# Core sources are compiled once with coverage instrumentation (fuzzer-no-link) and linked both
# into the libFuzzer binaries and into the replay binaries (replay_main.cpp instead of libFuzzer).
# Targets in SERVER_TARGETS also link the server: every $SERVER/*.cpp but the process and the
# sessions (main, listener, http/sse/ws_session), compiled the
# same way against the system Boost headers (Beast/Asio are header-only), with SQLite and OpenSSL.
SERVER=${FUZZ_SERVER_SRC:-server}
declare -A SERVER_TARGETS=([server_request]=1)
# libpq's headers live in their own directory on Debian (libpq-dev).
PQ_INCLUDE=$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
SERVER_FLAGS="-I $SERVER -I $PQ_INCLUDE -DBOOST_ASIO_NO_DEPRECATED -pthread"
SERVER_LIBS="-lsqlite3 -lpq -lcrypto -pthread"
mkdir -p $OUT/obj $OUT/json-include $OUT/artifacts
[ -e $OUT/json-include/nlohmann ] || ln -s /usr/include/nlohmann $OUT/json-include/nlohmann
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CXXFLAGS="-std=c++20 -O1 -g -fno-omit-frame-pointer $SAN -I $SRC -I tests/fuzz -isystem $OUT/json-include"

# An object is rebuilt when it is missing or older than its source or any header it included
# last time (the compiler's -MMD list in obj.d; system headers are not tracked).
compile() {  # src obj extra-flags...
  local src=$1 obj=$2 stale=0 dep
  shift 2
  if [ ! -f "$obj" ] || [ ! -f "$obj.d" ] || [ "$src" -nt "$obj" ]; then
    stale=1
  else
    for dep in $(sed -e '1s/^[^:]*://' -e 's/\\$//' "$obj.d"); do
      [ "$dep" -nt "$obj" ] && { stale=1; break; }
    done
  fi
  if [ $stale = 1 ]; then
    echo "[fuzz] compile $src"
    $CXX $CXXFLAGS "$@" -MMD -MF "$obj.d" -c "$src" -o "$obj" || return 1
  fi
}
export -f compile
export CXX CXXFLAGS

uses_server=0
for t in "${TARGETS[@]}"; do [ -n "${SERVER_TARGETS[$t]:-}" ] && uses_server=1; done
CORE_OBJS=()
for src in $SRC/core/*.cpp; do CORE_OBJS+=("$OUT/obj/core_$(basename "${src%.cpp}").o"); done
SERVER_SRCS=()
SERVER_OBJS=()
if [ $uses_server = 1 ]; then
  for src in $SERVER/*.cpp; do
    # The process and the sessions are not linked: the request target needs only the App and
    # the Beast conversion (http_convert.cpp), and the Beast-heavy session files are slow to build.
    case "$(basename "$src")" in main.cpp | listener.cpp | http_session.cpp | sse_session.cpp | ws_session.cpp) continue ;; esac
    SERVER_SRCS+=("$src")
    SERVER_OBJS+=("$OUT/obj/server_$(basename "${src%.cpp}").o")
  done
fi

echo "[fuzz] building with $($CXX --version | head -1)"
build_start=$SECONDS
{
  for src in $SRC/core/*.cpp; do
    echo "$src $OUT/obj/core_$(basename "${src%.cpp}").o -fsanitize=fuzzer-no-link"
  done
  for i in "${!SERVER_SRCS[@]}"; do
    echo "${SERVER_SRCS[$i]} ${SERVER_OBJS[$i]} -fsanitize=fuzzer-no-link $SERVER_FLAGS"
  done
  for t in "${TARGETS[@]}"; do
    # (no trailing blank: xargs -L would join the next line to this one)
    echo "tests/fuzz/fuzz_$t.cpp $OUT/obj/fuzz_$t.o -fsanitize=fuzzer-no-link${SERVER_TARGETS[$t]:+ $SERVER_FLAGS}"
  done
  echo "tests/fuzz/replay_main.cpp $OUT/obj/replay_main.o -Wall"
} | xargs -P "$JOBS" -L 1 bash -c 'compile "$@"' _ || { echo "[fuzz] build failed"; exit 1; }
for t in "${TARGETS[@]}"; do
  objs=($OUT/obj/fuzz_$t.o "${CORE_OBJS[@]}")
  libs=""
  if [ -n "${SERVER_TARGETS[$t]:-}" ]; then objs+=("${SERVER_OBJS[@]}"); libs=$SERVER_LIBS; fi
  for kind in fuzz replay; do
    bin=$OUT/$t; [ $kind = replay ] && bin=$OUT/replay_$t
    stale=0
    [ -f "$bin" ] || stale=1
    for o in "${objs[@]}" $OUT/obj/replay_main.o; do [ "$o" -nt "$bin" ] && stale=1; done
    [ $stale = 1 ] || continue
    if [ $kind = fuzz ]; then
      $CXX $SAN -fsanitize=fuzzer "${objs[@]}" $libs -o "$bin" || { echo "[fuzz] link $t failed"; exit 1; }
    else
      $CXX $SAN -fsanitize=fuzzer-no-link "${objs[@]}" $OUT/obj/replay_main.o $libs -o "$bin" \
        || { echo "[fuzz] link replay_$t failed"; exit 1; }
    fi
  done
done
echo "[fuzz] build: $((SECONDS - build_start)) s"

export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1"

# ---------------------------------------------------------------- replay
# Every seed and every crasher, without libFuzzer: the regression test for fixed crashes.
replay_fail=0
replay_total=0
for t in "${TARGETS[@]}"; do
  dirs=()
  for d in tests/fuzz/corpus/$t tests/fuzz/crashers/$t; do [ -d "$d" ] && dirs+=("$d"); done
  ((${#dirs[@]})) || continue
  log=$OUT/replay_$t.log
  if ./$OUT/replay_$t "${dirs[@]}" >"$log" 2>&1; then
    n=$(sed -n 's/^replayed \([0-9]*\) inputs$/\1/p' "$log")
    ncr=$(find tests/fuzz/crashers/$t -type f 2>/dev/null | grep -vc '/\.\|README' || true)
    replay_total=$((replay_total + n))
    printf '[fuzz] replay %-16s %4d inputs ok (%d crashers)\n' "$t" "$n" "$ncr"
  else
    replay_fail=$((replay_fail + 1))
    echo "[fuzz] replay $t FAILED; last input and report:"
    grep -E "^replay: " "$log" | tail -1
    grep -E "FUZZ_CHECK|ERROR|runtime error|SUMMARY" "$log" | head -10
  fi
done
echo "[fuzz] replayed $replay_total inputs, $replay_fail target(s) failed"
if [ "$MODE" = replay ]; then [ $replay_fail -eq 0 ]; exit $?; fi

# ---------------------------------------------------------------- fuzz
declare -A MAX_LEN=([sse_stream]=8192 [ws_path]=8192 [engine_ops]=512 [engine_restore]=16384)
declare -A DICT=([protocol_decode]=json [filter]=filter [mutation_apply]=json [sse_stream]=sse
                 [ws_path]=json [engine_restore]=json [server_request]=server_request)

fuzz_one() {  # target seed (0: libFuzzer picks one)
  local t=$1 seed=$2
  local work=$OUT/corpus/$t art=$OUT/artifacts/$t/
  mkdir -p "$work" "$art"
  [ -d tests/fuzz/corpus/$t ] && cp -n tests/fuzz/corpus/$t/* "$work"/ 2>/dev/null
  local args=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$art" -max_len="${MAX_LEN[$t]:-4096}")
  [ -n "${DICT[$t]:-}" ] && args+=(-dict=tests/fuzz/dict/${DICT[$t]}.dict)
  [ "$seed" != 0 ] && args+=(-seed="$seed")
  ./$OUT/$t "${args[@]}" "$work" >"$OUT/fuzz_$t.log" 2>&1
  echo $? >"$OUT/fuzz_$t.rc"
}
export -f fuzz_one
export OUT SECONDS_EACH
export MAX_LEN_DECL="$(declare -p MAX_LEN DICT)"

echo "[fuzz] fuzzing ${#TARGETS[@]} targets for ${SECONDS_EACH} s each, $JOBS at a time, seeds from ${SEED_BASE} (0 = random)"
for i in "${!TARGETS[@]}"; do
  seed=0; [ "$SEED_BASE" != 0 ] && seed=$((SEED_BASE + i))
  echo "${TARGETS[$i]} $seed"
done | xargs -P "$JOBS" -L 1 bash -c 'eval "$MAX_LEN_DECL"; fuzz_one "$0" "$1"'

crashes=0
total_execs=0
printf '[fuzz] %-16s %12s %9s %7s %7s %7s %s\n' target execs exec/s cov ft corpus result
for t in "${TARGETS[@]}"; do
  log=$OUT/fuzz_$t.log
  rc=$(cat $OUT/fuzz_$t.rc 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E "^#[0-9]+" "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  result=ok
  if [ "$rc" != 0 ] || grep -qE "^==[0-9]+==ERROR|runtime error:|FUZZ_CHECK failed" "$log"; then
    result="CRASH (see $log, artifacts in $OUT/artifacts/$t/)"
    crashes=$((crashes + 1))
  fi
  total_execs=$((total_execs + ${execs:-0}))
  printf '[fuzz] %-16s %12s %9s %7s %7s %7s %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
  if [ "$result" != ok ]; then
    grep -E "INFO: Seed:|FUZZ_CHECK failed|ERROR: |runtime error:|SUMMARY|Test unit written|out-of-memory|timeout after" "$log" | head -10 | sed 's/^/[fuzz]     /'
  fi
done
echo "[fuzz] total: $total_execs execs, crashes: $crashes, replay failures: $replay_fail, time: $((SECONDS - start_all)) s"
[ $crashes -eq 0 ] && [ $replay_fail -eq 0 ]
