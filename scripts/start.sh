#!/usr/bin/env bash
# One command from a fresh clone: install, build, run. Until the server and demo land this
# runs the core CLI demo; afterwards it serves the demo app on http://localhost:8080/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/build.sh
if [ -x build/server/syncline-server ] && [ -d demo/dist ]; then
  mkdir -p data
  exec ./build/server/syncline-server --port "${PORT:-8080}" --db sqlite:./data/syncline.db \
    --config server/config/demo.json --static demo/dist
fi
exec ./build/syncline-cli-demo
