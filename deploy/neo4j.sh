#!/usr/bin/env bash
# Neo4j 5 Community on standby (docs/network.md): the embedded database with its Bolt
# server on 127.0.0.1:$NEO4J_PORT, from Maven Central jars on Java 17, a bounded heap
# ($NEO4J_HEAP, 512m) and page cache, data under the state folder. Off by default:
# `ducats up neo4j` starts it. Usage: neo4j.sh start|stop|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=$STATE_DIR/neo4j
PIDFILE=$N/neo4j.pid
CLASSES=$NEO4J_LIBS/../classes
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/java}
JAVA=${JAVA:-java}
IDENT="Standby $N/home"

healthy() { port_open "$NEO4J_PORT"; }
running() { pid_running "$PIDFILE" "$IDENT"; }
healthy_or_gone() { ! running || healthy; }

start() {
  need "$JAVA" "apt-get install -y openjdk-17-jre-headless (or run deploy/install.sh)"
  [ -f "$CLASSES/Standby.class" ] || die "Neo4j jars missing in $NEO4J_LIBS; fix: run deploy/install.sh"
  local grace=0
  if running; then
    wait_until 60 neo4j healthy_or_gone || die "Neo4j (pid $(head -n 1 "$PIDFILE")) is running but not answering; see $N/neo4j.log"
    running && return 0
    log "neo4j (pid $(head -n 1 "$PIDFILE")) exited; starting it again"
  fi
  if [ -e "$PIDFILE" ]; then rm -f "$PIDFILE"; grace=5; fi
  port_free_or_die neo4j "$NEO4J_PORT" NEO4J_PORT $grace
  mkdir -p "$N/home"
  setsid nohup "$JAVA" -Xms128m -Xmx${NEO4J_HEAP:-512m} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dducats.pagecache=$((256 << 20)) -cp "$NEO4J_LIBS/*:$CLASSES" Standby "$N/home" "$NEO4J_PORT" \
    >"$N/neo4j.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_until 120 neo4j healthy; then
    running || die "Neo4j exited at start; see $N/neo4j.log"
    die "Neo4j did not open Bolt within 120 s; see $N/neo4j.log"
  fi
  log "neo4j ready on bolt://127.0.0.1:$NEO4J_PORT"
}

stop() { stop_pid neo4j "$PIDFILE" "$IDENT"; }

status() {
  local state=down pid=-
  if running; then pid=$(head -n 1 "$PIDFILE"); state=unhealthy; healthy && state=healthy; fi
  printf '%-10s %-6s %-8s %s\n' neo4j "$NEO4J_PORT" "$pid" "$state"
  [ "$state" = healthy ]
}

case "${1:-}" in
  start) start ;; stop) stop ;; status) status ;;
  *) die "usage: deploy/neo4j.sh start|stop|status" ;;
esac
