#!/usr/bin/env bash
# PostgreSQL 15 (+ TimescaleDB preloaded), its own cluster on 127.0.0.1:$POSTGRES_PORT.
# Usage: postgres.sh start|stop|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

P=$STATE_DIR/postgres

# PostgreSQL refuses to run as root. As root we run it as the 'postgres' system
# user (created by Debian's postgresql-common). When that user cannot reach the
# project's state folder (a clone under a 0700 mktemp folder, say), the cluster
# lives under /var/lib/ducats/<hash of the path> and .state/postgres links to it.
as_owner() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

place_data_dir() {
  [ -e "$P" ] && return 0
  if [ "$(id -u)" = 0 ] && ! as_owner test -x "$STATE_DIR"; then
    local real="/var/lib/ducats/$(printf '%s' "$STATE_DIR" | sha1sum | cut -c1-12)/postgres"
    mkdir -p "$real" && ln -sfn "$real" "$P"
  else
    mkdir -p "$P"
  fi
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$(readlink -f "$P")"
  chmod 700 "$(readlink -f "$P")"
}

# From here on, P is the real folder: the postgres user may not traverse the link's path.
resolve_data_dir() { if [ -e "$P" ]; then P=$(readlink -f "$P"); fi; }

psql_admin() { as_owner "$PG_BIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -XtAq "$@"; }
# -U postgres: without it pg_isready logs in as the calling user, and the server logs a FATAL
# "role root does not exist" for every probe.
healthy() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres; }

# Every process of this cluster, the postmaster and its backends, is a 'postgres' binary whose
# working directory is the data folder; nothing else is (a shell cd'ed there is not 'postgres').
cluster_proc() {
  local comm=
  read -r comm 2>/dev/null < "/proc/$1/comm" || true  # a builtin: this runs for every process
  [ "$comm" = postgres ] && pid_is "$1" postgres "$P/data"
}
postmaster_pid() { head -n 1 "$P/data/postmaster.pid" 2>/dev/null || true; }
running() { [ -f "$P/data/postmaster.pid" ] && cluster_proc "$(postmaster_pid)"; }
healthy_or_gone() { ! running || healthy; }
cluster_pids() {
  local d
  [ -d "$P/data" ] || return 0
  for d in /proc/[0-9]*; do cluster_proc "${d#/proc/}" && echo "${d#/proc/}"; done; return 0
}
no_cluster_pids() { [ -z "$(cluster_pids)" ]; }

# clear_crash: what a killed postmaster leaves. Its postmaster.pid and the socket's lock file
# (run/.s.PGSQL.PORT.lock) stay, and the server refuses to start over either ("lock file ...
# already exists") while kill -0 succeeds on the pid in them: a zombie until its parent reaps
# it, or a reused pid; PostgreSQL clears them itself only once that pid is gone. Its backends
# notice the death and exit within about a second; until then they hold the shared memory.
# Only call when the postmaster is not running.
clear_crash() {
  local orphans
  if ! wait_until 10 postgres no_cluster_pids; then
    orphans=$(cluster_pids | paste -sd ' ')
    log "killing backends left by a dead postmaster: $orphans"
    kill -KILL $orphans 2>/dev/null || true
    wait_until 5 postgres no_cluster_pids || die "backends of a dead postmaster survived SIGKILL: $orphans"
  fi
  rm -f "$P/data/postmaster.pid" "$P"/run/.s.PGSQL.*
}

init_once() {
  [ -f "$P/data/PG_VERSION" ] && return 0
  as_owner mkdir -p "$P/data" "$P/run"
  as_owner "$PG_BIN/initdb" -D "$P/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$P/initdb.log" 2>&1 \
    || die "initdb failed; see $P/initdb.log"
}

# Rewritten on every start so that a changed port takes effect.
write_config() {
  as_owner tee "$P/data/ducats.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
unix_socket_directories = '$P/run'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 200
shared_buffers = 2GB
work_mem = 32MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 15min
logging_collector = off
log_min_messages = warning
CONF
  grep -q "include_if_exists = 'ducats.conf'" "$P/data/postgresql.conf" \
    || echo "include_if_exists = 'ducats.conf'" | as_owner tee -a "$P/data/postgresql.conf" >/dev/null
}

create_db() {
  psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$POSTGRES_USER'" | grep -q 1 \
    || psql_admin -c "CREATE ROLE \"$POSTGRES_USER\" LOGIN SUPERUSER"
  psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DB'" | grep -q 1 \
    || psql_admin -c "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\""
}

start() {
  [ -x "$PG_BIN/postgres" ] || die "PostgreSQL 15 not found in $PG_BIN; fix: apt-get install -y postgresql-15 (or run deploy/install.sh)"
  [ -f "$PG_BIN/../lib/timescaledb.so" ] || [ -f "$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null)/timescaledb.so" ] \
    || die "TimescaleDB extension not installed; fix: run deploy/install.sh (builds it from Debian's source package)"
  place_data_dir
  resolve_data_dir
  local grace=0
  if running; then
    # Starting up or in crash recovery, or shutting down: wait for one or the other.
    wait_until 60 postgres healthy_or_gone \
      || die "PostgreSQL (pid $(postmaster_pid)) is running but not accepting connections; see $P/postgres.log"
    if running; then create_db; return 0; fi
  fi
  if [ -f "$P/data/postmaster.pid" ]; then
    log "postgres (pid $(postmaster_pid)) is not running; clearing what it left and starting it again"
    clear_crash; grace=5
  fi
  port_free_or_die postgres "$POSTGRES_PORT" POSTGRES_PORT $grace
  init_once
  write_config
  as_owner "$PG_BIN/pg_ctl" -D "$P/data" -l "$P/postgres.log" -w -t 60 start >/dev/null \
    || die "PostgreSQL did not start; see $P/postgres.log"
  wait_until 30 postgres healthy || die "PostgreSQL is not accepting connections; see $P/postgres.log"
  create_db
  log "postgres ready on 127.0.0.1:$POSTGRES_PORT (database $POSTGRES_DB)"
}

stop() {
  local pid
  resolve_data_dir
  [ -f "$P/data/postmaster.pid" ] || return 0
  pid=$(postmaster_pid)
  if running; then
    as_owner "$PG_BIN/pg_ctl" -D "$P/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || as_owner "$PG_BIN/pg_ctl" -D "$P/data" -m immediate -w -t 30 stop >/dev/null 2>&1 \
      || die "PostgreSQL (pid $(postmaster_pid)) did not stop; see $P/postgres.log"
  else
    clear_crash
  fi
  [[ $pid =~ ^[0-9]+$ ]] && wait_reaped 10 "$pid"
  return 0
}

status() {
  local state=down pid=-
  resolve_data_dir
  if running; then pid=$(postmaster_pid); state=unhealthy; healthy && state=healthy; fi
  printf '%-10s %-6s %-8s %s\n' postgres "$POSTGRES_PORT" "$pid" "$state"
  [ "$state" = healthy ]
}

case "${1:-}" in
  start) start ;; stop) stop ;; status) status ;;
  *) die "usage: deploy/postgres.sh start|stop|status" ;;
esac
