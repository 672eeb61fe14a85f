#!/usr/bin/env bash
# Redis, its own instance on 127.0.0.1:$REDIS_PORT. Usage: redis.sh start|stop|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$STATE_DIR/redis
PIDFILE=$R/redis.pid

healthy() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
# redis-server rewrites its title ("redis-server 127.0.0.1:PORT") and runs in its 'dir', $R:
# a pid is only this instance when both hold.
running() { pid_running "$PIDFILE" redis-server "$R"; }
healthy_or_gone() { ! running || healthy; }

start() {
  need redis-server "apt-get install -y redis-server (or run deploy/install.sh)"
  local grace=0
  if running; then
    wait_until 10 redis healthy_or_gone \
      || die "Redis (pid $(head -n 1 "$PIDFILE")) is running but not answering; see $R/redis.log"
    running && return 0
    log "redis (pid $(head -n 1 "$PIDFILE")) exited; starting it again"
  fi
  # A pid file left by a crash names a dead pid, a zombie, or by now somebody else's process.
  if [ -e "$PIDFILE" ]; then rm -f "$PIDFILE"; grace=5; fi
  port_free_or_die redis "$REDIS_PORT" REDIS_PORT $grace
  mkdir -p "$R"
  # The snapshot and hot cache are rebuilt from Kafka and Postgres after a
  # restart, so Redis keeps no RDB/AOF files. maxmemory bounds the hot cache.
  cat > "$R/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $PIDFILE
logfile $R/redis.log
dir $R
save ""
appendonly no
maxmemory ${REDIS_MAXMEMORY:-1gb}
maxmemory-policy noeviction
CONF
  redis-server "$R/redis.conf" || die "redis-server did not start; see $R/redis.log"
  wait_until 20 redis healthy || die "Redis did not answer PING within 20 s; see $R/redis.log"
  log "redis ready on 127.0.0.1:$REDIS_PORT"
}

stop() { stop_pid redis "$PIDFILE" redis-server "$R"; }

status() {
  local state=down pid=-
  if running; then pid=$(head -n 1 "$PIDFILE"); state=unhealthy; healthy && state=healthy; fi
  printf '%-10s %-6s %-8s %s\n' redis "$REDIS_PORT" "$pid" "$state"
  [ "$state" = healthy ]
}

case "${1:-}" in
  start) start ;; stop) stop ;; status) status ;;
  *) die "usage: deploy/redis.sh start|stop|status" ;;
esac
