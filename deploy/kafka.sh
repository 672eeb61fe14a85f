#!/usr/bin/env bash
# Apache Kafka, one KRaft node on 127.0.0.1:$KAFKA_PORT. Usage: kafka.sh start|stop|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K=$STATE_DIR/kafka
LIBS=$KAFKA_LIBS
PIDFILE=$K/kafka.pid
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/java}
JAVA=${JAVA:-java}
# The broker's command line names this state folder's config: a pid is only ours when it does.
IDENT="kafka.Kafka $K/server.properties"

render_config() {
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$K/data|g" "$DUCATS_ROOT/deploy/kafka/server.properties.in" > "$K/server.properties"
}

# A real metadata request: kcat asks the broker for the cluster's brokers and topics.
healthy() { kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 >/dev/null 2>&1; }
running() { pid_running "$PIDFILE" "$IDENT"; }
healthy_or_gone() { ! running || healthy; }

format_once() {
  [ -f "$K/data/meta.properties" ] && return 0
  local id
  id=$("$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  "$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool format -t "$id" -c "$K/server.properties" >"$K/format.log" 2>&1 \
    || die "formatting Kafka storage failed; see $K/format.log"
}

start() {
  need "$JAVA" "apt-get install -y openjdk-17-jre-headless (or run deploy/install.sh)"
  need kcat "apt-get install -y kcat (or run deploy/install.sh)"
  [ -n "$(ls "$LIBS"/kafka_2.13-*.jar 2>/dev/null)" ] || die "Kafka jars missing in $LIBS; fix: run deploy/install.sh"
  local grace=0
  if running; then
    # Starting up, or killed and not yet gone: wait for one or the other.
    wait_until 60 kafka healthy_or_gone \
      || die "Kafka (pid $(head -n 1 "$PIDFILE")) is running but not answering; see $K/logs/server.log"
    running && return 0
    log "kafka (pid $(head -n 1 "$PIDFILE")) exited; starting it again"
  fi
  # A pid file left by a crash names a dead pid, a zombie, or by now somebody else's process.
  if [ -e "$PIDFILE" ]; then rm -f "$PIDFILE"; grace=5; fi
  port_free_or_die kafka "$KAFKA_PORT" KAFKA_PORT $grace
  port_free_or_die kafka-controller "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT $grace
  mkdir -p "$K/data" "$K/logs"
  render_config
  format_once
  # setsid: the broker outlives the shell that started it and gets its own process group.
  setsid nohup "$JAVA" -Xms256m -Xmx${KAFKA_HEAP:-1g} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$K/logs" -Dlog4j.configuration="file:$DUCATS_ROOT/deploy/kafka/log4j.properties" \
    -cp "$LIBS/*" kafka.Kafka "$K/server.properties" >"$K/logs/stdout.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_until 90 kafka healthy; then
    running || die "Kafka exited at start; see $K/logs/stdout.log and $K/logs/server.log"
    die "Kafka did not answer a metadata request within 90 s; see $K/logs/server.log"
  fi
  log "kafka ready on 127.0.0.1:$KAFKA_PORT"
}

stop() { stop_pid kafka "$PIDFILE" "$IDENT"; }

status() {
  local state=down pid=-
  if running; then pid=$(head -n 1 "$PIDFILE"); state=unhealthy; healthy && state=healthy; fi
  printf '%-10s %-6s %-8s %s\n' kafka "$KAFKA_PORT" "$pid" "$state"
  [ "$state" = healthy ]
}

case "${1:-}" in
  start) start ;; stop) stop ;; status) status ;;
  *) die "usage: deploy/kafka.sh start|stop|status" ;;
esac
