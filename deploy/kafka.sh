#!/usr/bin/env bash
# Apache Kafka, one KRaft node on 127.0.0.1:$KAFKA_PORT. Usage: kafka.sh start|stop|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K=$STATE_DIR/kafka
LIBS=$KAFKA_LIBS
PIDFILE=$K/kafka.pid
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/java}
JAVA=${JAVA:-java}

render_config() {
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$K/data|g" "$DUCATS_ROOT/deploy/kafka/server.properties.in" > "$K/server.properties"
}

# A real metadata request: kcat asks the broker for the cluster's brokers and topics.
healthy() { kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 >/dev/null 2>&1; }

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
  if pid_alive "$PIDFILE"; then
    wait_until 60 kafka healthy || die "Kafka (pid $(cat "$PIDFILE")) is running but not answering; see $K/logs/server.log"
    return 0
  fi
  port_free_or_die kafka "$KAFKA_PORT" KAFKA_PORT
  port_free_or_die kafka-controller "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT
  mkdir -p "$K/data" "$K/logs"
  render_config
  format_once
  # setsid: the broker outlives the shell that started it and gets its own process group.
  setsid nohup "$JAVA" -Xms256m -Xmx${KAFKA_HEAP:-1g} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$K/logs" -Dlog4j.configuration="file:$DUCATS_ROOT/deploy/kafka/log4j.properties" \
    -cp "$LIBS/*" kafka.Kafka "$K/server.properties" >"$K/logs/stdout.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_until 90 kafka healthy; then
    pid_alive "$PIDFILE" || die "Kafka exited at start; see $K/logs/stdout.log and $K/logs/server.log"
    die "Kafka did not answer a metadata request within 90 s; see $K/logs/server.log"
  fi
  log "kafka ready on 127.0.0.1:$KAFKA_PORT"
}

stop() { stop_pid kafka "$PIDFILE"; }

status() {
  local state=down pid=-
  if pid_alive "$PIDFILE"; then pid=$(cat "$PIDFILE"); state=unhealthy; healthy && state=healthy; fi
  printf '%-10s %-6s %-8s %s\n' kafka "$KAFKA_PORT" "$pid" "$state"
  [ "$state" = healthy ]
}

case "${1:-}" in
  start) start ;; stop) stop ;; status) status ;;
  *) die "usage: deploy/kafka.sh start|stop|status" ;;
esac
