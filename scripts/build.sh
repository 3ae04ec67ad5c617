#!/usr/bin/env bash
# Builds what is missing or out of date: native (core tests, server) and wasm (engine module).
# Incremental: cmake/ninja only rebuild what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${SYNCLINE_JOBS:-$(nproc)}

echo "[build] native"
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build -j "$JOBS"

echo "[build] wasm"
# Debian's emcc runs its JS optimizer with the machine's node, which needs Debian's acorn.
export NODE_PATH=/usr/share/nodejs
if [ ! -f build-wasm/build.ninja ]; then
  emcmake cmake -S . -B build-wasm -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build-wasm -j "$JOBS"

# js-wrapper's build (copy-wasm.mjs) copies the loader and .wasm from build-wasm/web into dist/.
raw=$(stat -c %s build-wasm/web/syncline.wasm)
gz=$(gzip -9 -c build-wasm/web/syncline.wasm | wc -c)
jsraw=$(stat -c %s build-wasm/web/syncline.mjs)
jsgz=$(gzip -9 -c build-wasm/web/syncline.mjs | wc -c)
echo "[build] syncline.wasm: ${raw} bytes raw, ${gz} bytes gzip; loader syncline.mjs: ${jsraw} raw, ${jsgz} gzip"

if [ -f js-wrapper/tsconfig.json ]; then
  echo "[build] js-wrapper"
  (cd js-wrapper && npm run --silent build)
fi
if [ -f tests/e2e/app/vite.config.mjs ]; then
  echo "[build] e2e harness"
  npx vite build --config tests/e2e/app/vite.config.mjs
fi
if [ -f demo/package.json ] && [ "${SYNCLINE_SKIP_DEMO:-0}" != "1" ]; then
  echo "[build] demo"
  (cd demo && npm run --silent build)
fi
