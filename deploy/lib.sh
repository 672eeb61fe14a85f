# Shared helpers for the deploy/ scripts. Sourced, never run.
# Every service listens on 127.0.0.1 only, on its own port, with its data under
# $DUCATS_STATE_DIR (default: <project>/.state, git-ignored).
set -euo pipefail

DUCATS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${DUCATS_STATE_DIR:-$DUCATS_ROOT/.state}
# Installed artefacts (not service data) stay in the project whatever STATE_DIR is.
KAFKA_LIBS=${KAFKA_LIBS:-$DUCATS_ROOT/.state/kafka/libs}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
POSTGRES_PORT=${POSTGRES_PORT:-15432}
POSTGRES_DB=${POSTGRES_DB:-ducats}
POSTGRES_USER=${POSTGRES_USER:-ducats}
REDIS_PORT=${REDIS_PORT:-16379}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

mkdir -p "$STATE_DIR"

die() { echo "ducats: $*" >&2; exit 1; }
log() { echo "ducats: $*" >&2; }

# need CMD FIX: one-line error naming the fix when a prerequisite is missing.
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found; fix: $2"; }

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PIDFILE: true when the file names a running process.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# port_free_or_die NAME PORT VAR: refuse to start over somebody else's listener.
port_free_or_die() {
  if port_open "$2"; then
    die "port $2 for $1 is already taken by another process; fix: stop it or set $3"
  fi
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds.
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# stop_pid NAME PIDFILE: SIGTERM, wait up to 60 s, then SIGKILL. Leaves nothing behind.
stop_pid() {
  local name=$1 pidfile=$2 pid
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 60 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}
