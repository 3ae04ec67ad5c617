#!/usr/bin/env bash
# One command from a fresh clone: install, build, then serve the realtime demo at
# http://localhost:8080/ on SQLite (./data/syncline.db) with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/build.sh
PORT=${PORT:-8080}
if [ ! -x build/server/syncline-server ] || [ ! -f demo/dist/index.html ]; then
  echo "[start] demo not built; running the core CLI walk-through instead"
  exec ./build/syncline-cli-demo
fi
mkdir -p data
./build/server/syncline-server --port "$PORT" --db sqlite:./data/syncline.db \
  --config server/config/demo.json --static demo/dist &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' INT TERM
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done
if [ -f demo/scripts/seed.mjs ]; then node demo/scripts/seed.mjs "http://127.0.0.1:$PORT" || echo "[start] seeding failed (the app still runs)"; fi
echo "[start] syncline demo: http://localhost:$PORT/"
wait $server
