#!/usr/bin/env bash
# Local development / CI stack for session-fulfillment:
#   - Kafka 4.1 single node (KRaft, broker+controller) on 127.0.0.1:9092
#   - PostgreSQL (distribution cluster "main") on 127.0.0.1:5432,
#     role/database "fulfillment" (password "fulfillment")
#
# Usage: bash deploy/local/stack.sh up|down|status
#
# No Docker: Kafka's jars come from Maven Central (deploy/local/kafka/pom.xml)
# and PostgreSQL from the distribution's packages. All Kafka state (jars,
# data, logs, pid) lives under <repo>/.local/kafka; PostgreSQL keeps its
# usual Debian locations (/var/lib/postgresql, /var/log/postgresql).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

KAFKA_SRC_DIR="$SCRIPT_DIR/kafka"
KAFKA_POM="$KAFKA_SRC_DIR/pom.xml"
KAFKA_PROPS_TEMPLATE="$KAFKA_SRC_DIR/server.properties"
KAFKA_LOG4J_CONFIG="$KAFKA_SRC_DIR/log4j2.yaml"

KAFKA_HOME="$REPO_ROOT/.local/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_LIBS_MARKER="$KAFKA_LIBS/.resolved"   # contains sha256 of the pom
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_LOGS="$KAFKA_HOME/logs"
KAFKA_PROPS="$KAFKA_HOME/server.properties"  # rendered from the template
KAFKA_PID_FILE="$KAFKA_HOME/kafka.pid"

KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
# Any valid 22-char base64 UUID works; fixed so the data dir is reproducible.
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-sFu1fi11mentLoca1Kafka}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_READY_TIMEOUT=120
KAFKA_STOP_TIMEOUT=30

log() { echo "[stack] $*" >&2; }
die() { echo "[stack] ERROR: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# shellcheck source=deploy/local/postgres.sh
source "$SCRIPT_DIR/postgres.sh"

############################################################################
# Kafka
############################################################################

# A fresh Debian/Ubuntu machine may lack the JDK or Maven: install them from the
# distribution's packages, as postgres.sh does for PostgreSQL.
apt_install() {
  log "installing $* (apt-get)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

require_java() {
  command -v java >/dev/null 2>&1 || apt_install default-jre-headless
  command -v java >/dev/null 2>&1 || die "java not found (Kafka 4.1 needs Java 17+)"
}

# Runs a Kafka CLI class from the jars we resolved. No log4j2 config is given
# on purpose: log4j2's built-in default only prints ERRORs to the console.
kafka_tool() {
  java -Xmx256m -cp "$KAFKA_LIBS/*" "$@"
}

port_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

kafka_pid() {
  [[ -f $KAFKA_PID_FILE ]] || return 1
  local pid
  pid="$(<"$KAFKA_PID_FILE")"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # Guard against a recycled pid: it must really be our broker.
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

# "Answers" means a broker served an ApiVersions request, which it only does
# once it has registered with the controller and is unfenced, i.e. clients
# can use it. An open port alone is not enough.
kafka_answers() {
  port_open "$KAFKA_HOST" "$KAFKA_PORT" || return 1
  [[ -f $KAFKA_LIBS_MARKER ]] || return 1   # no jars => no tool to ask with
  timeout 30 java -Xmx128m -cp "$KAFKA_LIBS/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" 2>/dev/null |
    grep -q -- '-> ('
}

# Last 60 lines of this start attempt only (lines after the newest banner
# written by kafka_start), so a failure never shows a previous run's output.
kafka_print_log_tail() {
  local f
  for f in "$KAFKA_LOGS/server.log" "$KAFKA_LOGS/stdout.log"; do
    [[ -s $f ]] || continue
    echo "---- last lines (max 60) of $f ----" >&2
    # Ring buffer of 60 lines, emptied at each banner.
    awk -v max=60 '
      /^===== stack.sh: starting/ { n = 0 }
      { buf[n % max] = $0; n++ }
      END { for (i = (n > max ? n - max : 0); i < n; i++) print buf[i % max] }
    ' "$f" >&2
    echo "---- end of $f ----" >&2
  done
}

# Resolves the broker's jars from Maven Central into .local/kafka/libs.
# Skipped when the marker says the jars match the current pom; a pom change
# (e.g. a version bump) therefore re-resolves from scratch.
kafka_ensure_libs() {
  local want
  want="$(sha256sum "$KAFKA_POM" | awk '{print $1}')"
  if [[ -f $KAFKA_LIBS_MARKER && $(<"$KAFKA_LIBS_MARKER") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || apt_install maven
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to download Kafka's jars)"
  log "kafka: resolving jars from Maven Central into $KAFKA_LIBS"
  local t0 tmp="$KAFKA_HOME/libs.tmp"
  t0="$(now_ms)"
  rm -rf "$tmp"
  mkdir -p "$KAFKA_LOGS"
  # Into a temp dir first: an interrupted download must never look complete.
  # Output goes to a file: with -q Maven prints only errors, plus stray ANSI
  # reset codes from its console library that we don't want in CI logs.
  if ! mvn -B -q -f "$KAFKA_POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" >"$KAFKA_LOGS/mvn.log" 2>&1; then
    tail -n 60 "$KAFKA_LOGS/mvn.log" >&2
    die "kafka: mvn dependency:copy-dependencies failed (full output: $KAFKA_LOGS/mvn.log)"
  fi
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  echo "$want" >"$KAFKA_LIBS_MARKER"
  log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars resolved in $(( $(now_ms) - t0 ))ms"
}

# log.dirs must be absolute (the broker's cwd is arbitrary), so the
# checked-in template gets the repo path filled in on every `up`.
kafka_render_config() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  sed "s|@KAFKA_DATA_DIR@|$KAFKA_DATA|g" "$KAFKA_PROPS_TEMPLATE" >"$KAFKA_PROPS.tmp"
  mv "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
}

# KRaft needs its storage formatted (meta.properties + bootstrap checkpoint)
# exactly once. controller.quorum.voters is static, so no --standalone.
kafka_format_storage() {
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  log "kafka: formatting storage in $KAFKA_DATA (cluster id $KAFKA_CLUSTER_ID)"
  kafka_tool kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" -c "$KAFKA_PROPS" \
    >"$KAFKA_LOGS/format.log" 2>&1 || {
    cat "$KAFKA_LOGS/format.log" >&2
    die "kafka: storage format failed"
  }
}

kafka_start() {
  log "kafka: starting broker (logs: $KAFKA_LOGS/server.log)"
  rm -f "$KAFKA_PID_FILE"
  # Both logs are appended to across restarts; a banner makes it obvious in
  # a failure's log tail which lines belong to this attempt.
  local banner
  banner="===== stack.sh: starting Kafka broker at $(date -Is) ====="
  echo "$banner" >>"$KAFKA_LOGS/server.log"
  echo "$banner" >>"$KAFKA_LOGS/stdout.log"
  # setsid: own session, so the broker survives the calling shell/make and
  # is not hit by a Ctrl-C aimed at it. The tiny bash wrapper records its own
  # pid and then execs java, so the pid file holds the JVM's pid. It also
  # closes inherited fds >2 so a caller reading our output through a pipe
  # (CI runners, $(...)) is not kept waiting by the long-lived broker. No
  # redirection on that loop: bash would park stderr on a high fd, the loop
  # would close that fd, and the JVM's stderr would be lost.
  # shellcheck disable=SC2016,SC2086
  setsid nohup bash -c '
      for fd in $(ls /proc/$$/fd); do
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
      done
      echo $$ >"$1"; shift
      exec "$@"' kafka-launcher "$KAFKA_PID_FILE" \
    java $KAFKA_HEAP_OPTS \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$KAFKA_LOG4J_CONFIG" \
      -Dkafka.logs.dir="$KAFKA_LOGS" \
      -cp "$KAFKA_LIBS/*" \
      kafka.Kafka "$KAFKA_PROPS" \
    </dev/null >>"$KAFKA_LOGS/stdout.log" 2>&1 &
}

kafka_wait_ready() {
  local t0 deadline pid=""
  t0="$(now_ms)"
  deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    pid="$(kafka_pid)" || pid=""
    # The pid file appears within milliseconds; if it is there but the
    # process is gone, the JVM died (bad config, port taken, ...).
    if [[ -z $pid && -f $KAFKA_PID_FILE ]]; then
      kafka_print_log_tail
      die "kafka: broker process exited during startup"
    fi
    if [[ -n $pid ]] && kafka_answers; then
      log "kafka: ready on $KAFKA_HOST:$KAFKA_PORT (pid $pid) after $(( $(now_ms) - t0 ))ms"
      return 0
    fi
    sleep 0.5
  done
  kafka_print_log_tail
  die "kafka: not ready after ${KAFKA_READY_TIMEOUT}s (pid ${pid:-?} still running; 'down' stops it)"
}

kafka_up() {
  require_java
  if kafka_answers; then
    log "kafka: already running on $KAFKA_HOST:$KAFKA_PORT"
    return 0
  fi
  if kafka_pid >/dev/null; then
    # Our broker exists but does not answer yet (e.g. a previous `up` was
    # interrupted while it was starting): just wait for it.
    log "kafka: broker process $(kafka_pid) is running, waiting for it"
    kafka_wait_ready
    return 0
  fi
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$KAFKA_HOST" "$p"; then
      die "kafka: $KAFKA_HOST:$p is in use by a process that is not our broker (check: ss -ltnp)"
    fi
  done
  kafka_ensure_libs
  kafka_render_config
  kafka_format_storage
  kafka_start
  kafka_wait_ready
}

kafka_down() {
  local pid
  if ! pid="$(kafka_pid)"; then
    rm -f "$KAFKA_PID_FILE"
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      log "kafka: WARNING: something listens on $KAFKA_HOST:$KAFKA_PORT but it was not started by this script; leaving it"
    else
      log "kafka: already stopped"
    fi
    return 0
  fi
  # SIGTERM = controlled shutdown (flushes logs, so the next start does not
  # need log recovery).
  log "kafka: stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "kafka: still alive after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  # Wait for the kernel to really reap it so an immediate `up` can bind.
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  rm -f "$KAFKA_PID_FILE"
  log "kafka: stopped"
}

kafka_status() {
  if kafka_answers; then
    local pid
    pid="$(kafka_pid)" || pid="not ours"
    echo "kafka:    running  $KAFKA_HOST:$KAFKA_PORT (pid $pid)"
  else
    echo "kafka:    stopped  $KAFKA_HOST:$KAFKA_PORT"
    return 1
  fi
}

############################################################################
# Entry points
############################################################################

cmd_up() {
  # PostgreSQL first: it is fast, and a missing apt package is better
  # discovered before waiting on the JVM.
  pg_up
  kafka_up
}

cmd_down() {
  local rc=0
  kafka_down || rc=1
  pg_down || rc=1
  return "$rc"
}

cmd_status() {
  local rc=0
  kafka_status || rc=1
  pg_status || rc=1
  return "$rc"
}

main() {
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
      echo "usage: $0 up|down|status" >&2
      exit 2
      ;;
  esac
}

main "$@"
