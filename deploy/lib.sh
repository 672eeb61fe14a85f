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
NEO4J_LIBS=${NEO4J_LIBS:-$DUCATS_ROOT/.state/neo4j/libs}
NEO4J_PORT=${NEO4J_PORT:-17687}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

mkdir -p "$STATE_DIR"

die() { echo "ducats: $*" >&2; exit 1; }
log() { echo "ducats: $*" >&2; }

# need CMD FIX: one-line error naming the fix when a prerequisite is missing.
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found; fix: $2"; }

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# proc_state PID: the state letter in /proc/PID/stat (R, S, D, Z, ...); empty when there is no such pid.
# The command name in field 2 may hold spaces or parentheses, so cut after the last ')'.
proc_state() {
  local s
  read -r s 2>/dev/null < "/proc/$1/stat" || return 0
  s=${s##*) }; echo "${s%% *}"
}

# pid_is PID PATTERN [DIR]: true when PID is a live process, not a zombie, whose command line
# contains PATTERN and, when DIR is given, whose working directory is DIR. kill -0 is not
# enough: it succeeds on a zombie (a service killed with -9 stays one until its parent, often
# pid 1 here, reaps it), and a stale pid file may name a pid since reused by another program.
pid_is() {
  local pid=$1 state cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(proc_state "$pid")
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$2"* ]] || return 1
  [ -z "${3:-}" ] || [ "/proc/$pid/cwd" -ef "$3" ]
}

# pid_running PIDFILE PATTERN [DIR]: true when PIDFILE names a live process of the service (pid_is).
pid_running() { [ -s "$1" ] && pid_is "$(head -n 1 "$1")" "$2" "${3:-}"; }

# port_holder PORT: "pid N (name)" of the listener on PORT when ss can tell, else "another process".
port_holder() {
  local users
  users=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n 1) || true
  if [[ $users =~ \(\(\"([^\"]*)\",pid=([0-9]+) ]]; then
    echo "pid ${BASH_REMATCH[2]} (${BASH_REMATCH[1]})"
  else
    echo "another process"
  fi
}

# port_free_or_die NAME PORT VAR [GRACE]: refuse to start over somebody else's listener. GRACE
# seconds (default 0) let an instance of the same service that has just been killed release its
# ports: a dying process loses its command line (its memory) a moment before its sockets.
port_free_or_die() {
  port_open "$2" || return 0
  [ "${4:-0}" -gt 0 ] && wait_until "$4" "$1 port" port_closed "$2" && return 0
  die "port $2 for $1 is already taken by $(port_holder "$2"); fix: stop it or set $3"
}
port_closed() { ! port_open "$1"; }

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds.
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# wait_gone SECONDS PID PATTERN [DIR]: wait until PID is no longer the service (pid_is).
wait_gone() { wait_until "$1" "pid $2" pid_gone "$2" "$3" "${4:-}"; }
pid_gone() { ! pid_is "$@"; }

# wait_reaped SECONDS PID: a killed process first loses its memory (its command line reads
# empty), then its files and sockets, and then stays a zombie until its parent reaps it (pid 1
# here, as the shell that started it has exited: about 2 s on this machine). 'down' waits for
# all of it, bounded, so that no port or entry is left behind; a zombie holds nothing, so a
# parent that never reaps is not an error.
wait_reaped() { wait_until "$1" "pid $2 reaped" not_exiting "$2" || true; }
not_exiting() {
  local state
  state=$(proc_state "$1")
  [ -z "$state" ] && return 0
  [ "$state" != Z ] && [ "$state" != X ] && [ -n "$(tr -d '\0' < "/proc/$1/cmdline" 2>/dev/null)" ]
}

# stop_pid NAME PIDFILE PATTERN [DIR]: SIGTERM, wait up to 60 s, then SIGKILL. Leaves nothing
# behind, and never signals a pid that is not the service (a stale file naming a reused pid).
stop_pid() {
  local name=$1 pidfile=$2 pid
  pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
  if ! pid_running "$pidfile" "$3" "${4:-}"; then
    [[ $pid =~ ^[0-9]+$ ]] && wait_reaped 10 "$pid"
    rm -f "$pidfile"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone 60 "$pid" "$3" "${4:-}"; then
    log "$name did not stop in 60 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone 5 "$pid" "$3" "${4:-}" || die "$name (pid $pid) survived SIGKILL; see ps -o stat= -p $pid"
  fi
  wait_reaped 10 "$pid"
  rm -f "$pidfile"
}
