#!/usr/bin/env bash
# A local cluster to try (docs/scale-out.md): a throwaway PostgreSQL in ./data/pg, three
# syncline-server nodes on it, HAProxy in front at http://localhost:8080/, the demo seeded.
#
#   scripts/cluster.sh          install what is missing, build, start; stays in the foreground,
#                               Ctrl-C (SIGINT/SIGTERM) stops HAProxy, the nodes and PostgreSQL
#   scripts/cluster.sh stop     stop a cluster left running (another terminal, a killed script)
#   scripts/cluster.sh status   what runs, and which nodes HAProxy sends traffic to
#
# Environment (default):
#   SYNCLINE_CLUSTER_PORT        the balancer (8080)
#   SYNCLINE_CLUSTER_NODE_PORTS  one node per port ("8081 8082 8083")
#   SYNCLINE_CLUSTER_PG_PORT     PostgreSQL (5433)
#   SYNCLINE_CLUSTER_STATS_PORT  HAProxy's stats page (8404)
#   SYNCLINE_CLUSTER_DATA        PostgreSQL in DATA/pg; config, logs, pids in DATA/cluster (./data)
#   SYNCLINE_SERVER_BIN          the node binary (build/server/syncline-server)
#   SYNCLINE_STATIC_DIR          the web app the nodes serve (demo/dist)
#   SYNCLINE_CLUSTER_SKIP_BUILD  1: skip bootstrap and build (for tests, which run after them)
# Every port listens on 127.0.0.1 only. PostgreSQL trusts every local connection: a demo cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PORT=${SYNCLINE_CLUSTER_PORT:-8080}
read -ra NODE_PORTS <<<"${SYNCLINE_CLUSTER_NODE_PORTS:-8081 8082 8083}"
PG_PORT=${SYNCLINE_CLUSTER_PG_PORT:-5433}
STATS_PORT=${SYNCLINE_CLUSTER_STATS_PORT:-8404}
DATA=$(realpath -m "${SYNCLINE_CLUSTER_DATA:-data}")
SERVER_BIN=$(realpath -m "${SYNCLINE_SERVER_BIN:-build/server/syncline-server}")
STATIC_DIR=$(realpath -m "${SYNCLINE_STATIC_DIR:-demo/dist}")
CONFIG=$ROOT/server/config/demo.json
PGBIN=/usr/lib/postgresql/15/bin
PGDIR=$DATA/pg
RUN=$DATA/cluster
DB_URL="postgresql://postgres@127.0.0.1:$PG_PORT/syncline"

log() { echo "[cluster] $*"; }
die() { echo "[cluster] $*" >&2; exit 1; }
# From /: the postgres user may not be allowed into the current directory.
as_pg() { (cd / && runuser -u postgres -- "$@"); }

# alive PID WORD: PID runs and its command line contains WORD (a reused pid is not ours).
alive() {
  [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}
pid_of() { if [ -f "$RUN/$1.pid" ]; then cut -d' ' -f1 "$RUN/$1.pid"; fi; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pg_running() { [ -f "$PGDIR/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; }
healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$1/v1/health" 2>/dev/null | grep -q '"status":"ok"'; }

# stop_proc NAME WORD: SIGTERM the process of DATA/cluster/NAME.pid, SIGKILL after 10 s.
stop_proc() {
  local pid
  pid=$(pid_of "$1")
  if alive "$pid" "$2"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" "$2" || break; sleep 0.1; done
    if alive "$pid" "$2"; then
      log "$1 (pid $pid) did not stop in 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$1.pid"
}

# HAProxy first (no new requests), then the nodes (each drains its streams), then PostgreSQL.
stop_all() {
  stop_proc haproxy haproxy
  local f name
  for f in "$RUN"/node*.pid; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .pid)
    stop_proc "$name" syncline-server &
  done
  wait
  if pg_running; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR" -m fast -w stop >/dev/null
  fi
}

anything_running() {
  local f
  for f in "$RUN"/*.pid; do
    [ -f "$f" ] || continue
    case $(basename "$f") in
      cluster.pid) alive "$(pid_of cluster)" cluster.sh && return 0 ;;
      haproxy.pid) alive "$(pid_of haproxy)" haproxy && return 0 ;;
      *) alive "$(cut -d' ' -f1 "$f")" syncline-server && return 0 ;;
    esac
  done
  pg_running
}

cmd_stop() {
  local pid
  pid=$(pid_of cluster)
  if alive "$pid" cluster.sh; then
    log "stopping the cluster of pid $pid"
    kill -TERM "$pid"
    for _ in $(seq 1 600); do alive "$pid" cluster.sh || break; sleep 0.1; done
  fi
  if anything_running; then
    log "stopping what is left"
    stop_all
  fi
  rm -f "$RUN/cluster.pid"
  log "stopped"
}

cmd_status() {
  # The ports the running cluster was started with (a status without the same environment).
  # shellcheck source=/dev/null
  if [ -f "$RUN/ports" ]; then . "$RUN/ports"; fi
  local pid up=0 states="" i p
  pid=$(pid_of cluster)
  if alive "$pid" cluster.sh; then echo "cluster.sh    running, pid $pid"; up=1; else echo "cluster.sh    not running"; fi
  pid=$(pid_of haproxy)
  if alive "$pid" haproxy; then
    up=1
    echo "haproxy       pid $pid, http://localhost:$PORT/ ($(healthy "$PORT" && echo healthy || echo "not answering")), stats http://localhost:$STATS_PORT/"
    states=$(curl -fsS --max-time 2 "http://127.0.0.1:$STATS_PORT/;csv" 2>/dev/null | awk -F, '$1 == "nodes" && $2 ~ /^node/ { print $2 "=" $18 }')
  else
    echo "haproxy       not running"
  fi
  for i in "${!NODE_PORTS[@]}"; do
    p=${NODE_PORTS[$i]}
    pid=$(pid_of "node$((i + 1))")
    local seen
    seen=$(printf '%s\n' "$states" | sed -n "s/^node$((i + 1))=//p")
    if alive "$pid" syncline-server; then
      up=1
      echo "node$((i + 1))         pid $pid, port $p ($(healthy "$p" && echo healthy || echo "not answering"))${seen:+, haproxy: $seen}"
    else
      echo "node$((i + 1))         not running (port $p)${seen:+, haproxy: $seen}"
    fi
  done
  if pg_running; then
    up=1
    echo "postgresql    running, port $PG_PORT, data $PGDIR"
  else
    echo "postgresql    not running (data $PGDIR)"
  fi
  [ "$up" = 1 ]
}

# PostgreSQL runs as the postgres user: every directory above DIR must let it through.
make_reachable() {
  local d="" part
  IFS=/ read -ra parts <<<"${1#/}"
  for part in "${parts[@]}"; do
    d="$d/$part"
    if ! as_pg test -x "$d"; then
      chmod o+x "$d"
      log "made $d traversable for the postgres user (chmod o+x)"
    fi
  done
}

# The settings live in scripts/lib/haproxy-config.mjs, shared with the cluster chaos suite.
write_haproxy_cfg() {
  node "$ROOT/scripts/lib/haproxy-config.mjs" "$PORT" "$STATS_PORT" "${NODE_PORTS[@]}" --by scripts/cluster.sh \
    >"$RUN/haproxy.cfg" || die "cannot write $RUN/haproxy.cfg"
}

cmd_start() {
  local pid
  pid=$(pid_of cluster)
  if alive "$pid" cluster.sh; then
    die "a cluster already runs from $DATA (pid $pid): scripts/cluster.sh status, scripts/cluster.sh stop"
  fi
  if [ "${SYNCLINE_CLUSTER_SKIP_BUILD:-0}" != 1 ]; then
    bash scripts/bootstrap.sh
    bash scripts/build.sh
  fi
  command -v haproxy >/dev/null || die "haproxy is not installed (scripts/bootstrap.sh installs it)"
  [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 is not installed in $PGBIN (scripts/bootstrap.sh installs it)"
  [ -x "$SERVER_BIN" ] || die "no server binary at $SERVER_BIN (scripts/build.sh builds it)"
  [ "$(id -u)" = 0 ] || die "run as root: PostgreSQL is started as the postgres user (runuser)"
  local static_args=(--static "$STATIC_DIR")
  if [ ! -f "$STATIC_DIR/index.html" ]; then
    log "no web app in $STATIC_DIR: the nodes serve the API only"
    static_args=()
  fi

  mkdir -p "$RUN"
  if anything_running; then
    log "stopping what an earlier run left in $DATA"
    stop_all
  fi
  local p
  for p in "$PORT" "$STATS_PORT" "${NODE_PORTS[@]}" "$PG_PORT"; do
    port_busy "$p" && die "port $p is in use (SYNCLINE_CLUSTER_PORT, _NODE_PORTS, _PG_PORT, _STATS_PORT choose others)"
  done

  echo "$$" >"$RUN/cluster.pid"
  cat >"$RUN/ports" <<EOF
PORT=$PORT
NODE_PORTS=(${NODE_PORTS[*]})
PG_PORT=$PG_PORT
STATS_PORT=$STATS_PORT
EOF
  # Ctrl-C or SIGTERM is the way to stop: an orderly stop exits 0 (like the nodes do).
  trap 'exit 0' INT TERM
  trap cleanup EXIT

  # PostgreSQL: created once, reused by every later start.
  make_reachable "$RUN"
  if [ ! -f "$PGDIR/PG_VERSION" ]; then
    [ -d "$PGDIR" ] && [ -n "$(ls -A "$PGDIR")" ] && die "$PGDIR is not empty and holds no PostgreSQL cluster"
    log "creating a PostgreSQL cluster in $PGDIR"
    mkdir -p "$PGDIR"
    chown postgres:postgres "$PGDIR"
    chmod 700 "$PGDIR"
    as_pg "$PGBIN/initdb" -D "$PGDIR" -A trust -U postgres --no-instructions >"$RUN/initdb.log" 2>&1 ||
      { cat "$RUN/initdb.log" >&2; die "initdb failed"; }
  else
    [ "$(cat "$PGDIR/PG_VERSION")" = 15 ] || die "$PGDIR holds PostgreSQL $(cat "$PGDIR/PG_VERSION"), not 15"
    log "reusing the PostgreSQL cluster in $PGDIR"
  fi
  touch "$RUN/postgresql.log"
  chown postgres:postgres "$RUN/postgresql.log"
  # TCP on loopback only, no Unix socket (the path could be too long, or out of postgres' reach).
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR" -l "$RUN/postgresql.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null ||
    { tail -20 "$RUN/postgresql.log" >&2; die "PostgreSQL did not start"; }
  local psql=("$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres)
  if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'syncline'")" != 1 ]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE syncline" >/dev/null
  fi
  log "PostgreSQL on 127.0.0.1:$PG_PORT, database syncline"

  # The nodes: one database, each its own port. Logs (JSON lines, this run's) in
  # DATA/cluster/nodeN.log.
  # The demo config plus HAProxy as a trusted proxy: per-address limits (the token issuer's,
  # failed tokens') then count each client's forwarded address, not the balancer's.
  local node_config=$RUN/node-config.json
  node -e 'const fs = require("fs"); const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    c.trusted_proxies = ["127.0.0.1"]; fs.writeFileSync(process.argv[2], JSON.stringify(c, null, 2));' \
    "$CONFIG" "$node_config" || die "cannot write $node_config"
  local i pids=()
  for i in "${!NODE_PORTS[@]}"; do
    "$SERVER_BIN" --port "${NODE_PORTS[$i]}" --db "$DB_URL" --config "$node_config" "${static_args[@]}" \
      >"$RUN/node$((i + 1)).log" 2>&1 </dev/null &
    echo "$! ${NODE_PORTS[$i]}" >"$RUN/node$((i + 1)).pid"
    pids+=($!)
  done
  for i in "${!NODE_PORTS[@]}"; do
    for _ in $(seq 1 300); do
      healthy "${NODE_PORTS[$i]}" && break
      alive "${pids[$i]}" syncline-server || break
      sleep 0.1
    done
    healthy "${NODE_PORTS[$i]}" || { tail -20 "$RUN/node$((i + 1)).log" >&2; die "node$((i + 1)) did not start"; }
  done
  log "${#NODE_PORTS[@]} nodes on ports ${NODE_PORTS[*]}"

  write_haproxy_cfg
  local check
  check=$(haproxy -c -f "$RUN/haproxy.cfg" 2>&1) || { echo "$check" >&2; die "invalid $RUN/haproxy.cfg"; }
  # Truncated, not appended to: HAProxy drops O_APPEND when it makes its stdout non-blocking.
  haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/haproxy.log" 2>&1 </dev/null &
  local haproxy_pid=$!
  echo "$haproxy_pid $PORT" >"$RUN/haproxy.pid"
  for _ in $(seq 1 100); do healthy "$PORT" && break; sleep 0.1; done
  healthy "$PORT" || { tail -20 "$RUN/haproxy.log" >&2; die "HAProxy does not answer on port $PORT"; }

  if [ -f demo/scripts/seed.mjs ]; then
    node demo/scripts/seed.mjs "http://127.0.0.1:$PORT" || log "seeding failed (the cluster still runs)"
  fi

  cat <<EOF
[cluster] syncline cluster: http://localhost:$PORT/
[cluster]   HAProxy :$PORT (round robin, stats http://localhost:$STATS_PORT/) -> nodes :${NODE_PORTS[*]}
[cluster]   PostgreSQL 127.0.0.1:$PG_PORT/syncline (data $PGDIR)
[cluster]   logs in $RUN; scripts/cluster.sh status shows what runs
[cluster] Ctrl-C stops the cluster
EOF

  # Until Ctrl-C: report a node that exits (HAProxy routes around it); stop when HAProxy exits.
  local done_pid st how
  while :; do
    st=0
    done_pid=""
    wait -n -p done_pid "$haproxy_pid" "${pids[@]}" 2>/dev/null || st=$?
    [ -n "${done_pid:-}" ] || continue
    how="status $st"
    [ "$st" -gt 128 ] && how="killed by signal $((st - 128))"
    if [ "$done_pid" = "$haproxy_pid" ]; then
      log "HAProxy exited ($how): stopping"
      exit 1
    fi
    for i in "${!pids[@]}"; do
      if [ "${pids[$i]}" = "$done_pid" ]; then
        log "node$((i + 1)) (port ${NODE_PORTS[$i]}) exited ($how); HAProxy sends its traffic to the others"
        unset 'pids[i]'
      fi
    done
    if [ ${#pids[@]} -eq 0 ]; then
      log "no node is left: stopping"
      exit 1
    fi
  done
}

cleaned=0
cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  trap '' INT TERM  # a second Ctrl-C does not cut the stop short
  log "stopping HAProxy, the nodes and PostgreSQL"
  stop_all
  rm -f "$RUN/cluster.pid"
  log "stopped"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: scripts/cluster.sh [start|stop|status]" >&2; exit 2 ;;
esac
