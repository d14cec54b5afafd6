#!/usr/bin/env bash
# Local development / CI stack for session-fulfillment:
#   - Kafka 4.1 single node (KRaft, broker+controller) on 127.0.0.1:
#       9092 PLAINTEXT (the default), 9093 CONTROLLER,
#       9094 SASL_SSL (SCRAM-SHA-512, user "fulfillment"/"fulfillment-secret"),
#       9095 SSL with a required client certificate (mutual TLS);
#     TLS material (a local CA, broker and client certificates) in
#     <repo>/.local/kafka/tls. Ports can be moved with STACK_KAFKA_PORT,
#     STACK_KAFKA_CONTROLLER_PORT, STACK_KAFKA_SASL_SSL_PORT and
#     STACK_KAFKA_MTLS_PORT, e.g. to run a second checkout's broker next to
#     the first one.
#   - PostgreSQL (distribution cluster "main") on 127.0.0.1:5432,
#     role/database "fulfillment" (password "fulfillment"), plus the role
#     "fulfillment_tls" (password "fulfillment-tls") that may only log in over
#     TLS; its CA is copied to <repo>/.local/postgres/tls/ca.pem.
#   - On demand, a three-node Kafka cluster (`up cluster`) on 127.0.0.1:
#     29092-29094, each node broker and controller, replication factor 3 and
#     min.insync.replicas=2 by default; see deploy/local/cluster.sh.
#   - Replicas of PostgreSQL (deploy/local/standby.sh): `up standby`, a hot
#     standby of main on 5433; `up ha`, a primary (5434) and synchronous standby
#     (5435) of their own, for failover tests that promote, demote and stop.
#
# Usage: bash deploy/local/stack.sh up|down|status [kafka|postgres|cluster|standby|ha]
#   (no second argument: Kafka's single broker and PostgreSQL)
#        bash deploy/local/stack.sh broker stop|start|kill N
#   (node N of the cluster: stop = SIGTERM and wait for its exit, kill =
#   SIGKILL, start = start it again and wait until it serves)
#        bash deploy/local/stack.sh promote [standby]|ha | demote ha | stop-primary ha
#        bash deploy/local/stack.sh synchronous ha on|off
#        bash deploy/local/stack.sh restart-primary ha [SECONDS] | failover ha [SECONDS] | rejoin ha
#        bash deploy/local/stack.sh switchover ha [SECONDS] | read-only ha on|off
#   (whichever of ha's two servers is the primary; deploy/local/standby.sh)
#
# No Docker: Kafka's jars come from Maven Central (deploy/local/kafka/pom.xml)
# and PostgreSQL from the distribution's packages. All Kafka state (jars,
# data, logs, pid) lives under <repo>/.local/kafka, the cluster's under
# <repo>/.local/kafka-cluster (it uses the same jars); PostgreSQL keeps its
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
KAFKA_TLS_DIR="$KAFKA_HOME/tls"
# Client settings for the Kafka CLI tools to log in on the SASL_SSL listener.
KAFKA_SASL_CLIENT_PROPS="$KAFKA_HOME/sasl-ssl-client.properties"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${STACK_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${STACK_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_SASL_SSL_PORT="${STACK_KAFKA_SASL_SSL_PORT:-9094}"
KAFKA_MTLS_PORT="${STACK_KAFKA_MTLS_PORT:-9095}"
KAFKA_SCRAM_MECHANISM=SCRAM-SHA-512
KAFKA_SCRAM_USER=fulfillment
KAFKA_SCRAM_PASSWORD=fulfillment-secret
# Any valid 22-char base64 UUID works; fixed so the data dir is reproducible.
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-sFu1fi11mentLoca1Kafka}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx2g}"
KAFKA_READY_TIMEOUT=120
KAFKA_STOP_TIMEOUT=30

log() { echo "[stack] $*" >&2; }
die() { echo "[stack] ERROR: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# shellcheck source=deploy/local/tls.sh
source "$SCRIPT_DIR/tls.sh"
# shellcheck source=deploy/local/postgres.sh
source "$SCRIPT_DIR/postgres.sh"
# shellcheck source=deploy/local/cluster.sh
source "$SCRIPT_DIR/cluster.sh"
# shellcheck source=deploy/local/standby.sh
source "$SCRIPT_DIR/standby.sh"

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

# The broker's TLS material in .local/kafka/tls, made once (see tls.sh):
#   ca.pem / ca-key.pem           the local CA (clients trust ca.pem)
#   broker.pem / broker-key.pem   SAN IP:127.0.0.1, DNS:localhost
#   broker-keystore.pem           key + certificate chain, the PEM key store
#   client.pem / client-key.pem   a client certificate for the mTLS listener
kafka_ensure_tls() {
  require_openssl
  local d=$KAFKA_TLS_DIR
  tls_ensure_ca "$d" "session-fulfillment local Kafka CA"
  tls_ensure_leaf "$d" broker 127.0.0.1 server "IP:127.0.0.1,DNS:localhost"
  tls_ensure_leaf "$d" client fulfillment-client client
  local keystore="$d/broker-keystore.pem" want
  want="$(cat "$d/broker-key.pem" "$d/broker.pem" "$d/ca.pem")"
  if [[ ! -s $keystore || $(<"$keystore") != "$want" ]]; then
    (umask 077 && printf '%s\n' "$want" >"$keystore.tmp")
    mv "$keystore.tmp" "$keystore"
  fi
}

# log.dirs and the TLS paths must be absolute (the broker's cwd is
# arbitrary), so the checked-in template gets the repo path and the ports
# filled in. The first line carries digests of the TLS material and of the
# pom (the jars), so that new certificates or a new Kafka version, like any
# other change, make the rendered file differ from the one the running broker
# started with (see kafka_up).
kafka_render_config() {
  local out=$1 tls jars
  tls="$(cat "$KAFKA_TLS_DIR/broker-keystore.pem" "$KAFKA_TLS_DIR/ca.pem" | sha256sum | awk '{print $1}')"
  jars="$(sha256sum "$KAFKA_POM" | awk '{print $1}')"
  {
    echo "# Rendered by deploy/local/stack.sh from deploy/local/kafka/server.properties; sha256 of TLS material $tls, of pom.xml $jars"
    sed -e "s|@KAFKA_DATA_DIR@|$KAFKA_DATA|g" \
      -e "s|@KAFKA_TLS_DIR@|$KAFKA_TLS_DIR|g" \
      -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@KAFKA_SASL_SSL_PORT@|$KAFKA_SASL_SSL_PORT|g" \
      -e "s|@KAFKA_MTLS_PORT@|$KAFKA_MTLS_PORT|g" \
      "$KAFKA_PROPS_TEMPLATE"
  } >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then
    die "kafka: unfilled placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -n 1)"
  fi
}

# What the Kafka CLI tools need to log in on the SASL_SSL listener the way a
# client of a hosted Kafka would (hostname verification included).
kafka_write_sasl_client_props() {
  (
    umask 077
    cat >"$KAFKA_SASL_CLIENT_PROPS.tmp" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=$KAFKA_SCRAM_MECHANISM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_SCRAM_USER" password="$KAFKA_SCRAM_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_TLS_DIR/ca.pem
PROPS
  )
  mv "$KAFKA_SASL_CLIENT_PROPS.tmp" "$KAFKA_SASL_CLIENT_PROPS"
}

# True when the SCRAM user can log in over SASL_SSL and get an answer.
kafka_sasl_login_works() {
  port_open "$KAFKA_HOST" "$KAFKA_SASL_SSL_PORT" || return 1
  timeout 30 java -Xmx128m -cp "$KAFKA_LIBS/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$KAFKA_HOST:$KAFKA_SASL_SSL_PORT" \
    --command-config "$KAFKA_SASL_CLIENT_PROPS" 2>/dev/null |
    grep -q -- '-> ('
}

# A data dir formatted with --add-scram already has the user. One formatted
# before the SASL_SSL listener existed does not: add (or reset) the
# credential through the PLAINTEXT listener, then wait until the login works
# (the credential reaches the broker through the metadata log).
kafka_ensure_scram_user() {
  kafka_write_sasl_client_props
  kafka_sasl_login_works && return 0
  log "kafka: setting the $KAFKA_SCRAM_MECHANISM credential of user '$KAFKA_SCRAM_USER'"
  kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
    --alter --entity-type users --entity-name "$KAFKA_SCRAM_USER" \
    --add-config "$KAFKA_SCRAM_MECHANISM=[password=$KAFKA_SCRAM_PASSWORD]" \
    >"$KAFKA_LOGS/scram.log" 2>&1 || {
    cat "$KAFKA_LOGS/scram.log" >&2
    die "kafka: adding the SCRAM credential failed"
  }
  local attempt
  for attempt in 1 2 3 4 5; do
    if kafka_sasl_login_works; then
      log "kafka: user '$KAFKA_SCRAM_USER' logs in on $KAFKA_HOST:$KAFKA_SASL_SSL_PORT (SASL_SSL)"
      return 0
    fi
    sleep "$attempt"
  done
  kafka_print_log_tail
  die "kafka: '$KAFKA_SCRAM_USER' cannot log in on $KAFKA_HOST:$KAFKA_SASL_SSL_PORT (SASL_SSL, $KAFKA_SCRAM_MECHANISM)"
}

# KRaft needs its storage formatted (meta.properties + bootstrap checkpoint)
# exactly once. controller.quorum.voters is static, so no --standalone. The
# SCRAM user goes into the bootstrap metadata, so the SASL_SSL listener
# accepts it from the first start.
kafka_format_storage() {
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  log "kafka: formatting storage in $KAFKA_DATA (cluster id $KAFKA_CLUSTER_ID)"
  kafka_tool kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" -c "$KAFKA_PROPS" \
    --add-scram "$KAFKA_SCRAM_MECHANISM=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
    >"$KAFKA_LOGS/format.log" 2>&1 || {
    cat "$KAFKA_LOGS/format.log" >&2
    die "kafka: storage format failed"
  }
}

kafka_start() {
  log "kafka: starting broker (logs: $KAFKA_LOGS/server.log)"
  kafka_launch "$KAFKA_PID_FILE" "$KAFKA_LOGS" "$KAFKA_PROPS" "$KAFKA_HEAP_OPTS" broker
}

# kafka_launch PID_FILE LOGS_DIR PROPERTIES HEAP_OPTS WHAT: starts one Kafka
# node (this broker, or a node of the three-node cluster, cluster.sh) in the
# background and returns at once.
kafka_launch() {
  local pid_file=$1 logs=$2 props=$3 heap=$4 what=$5
  rm -f "$pid_file"
  # Both logs are appended to across restarts; a banner makes it obvious in
  # a failure's log tail which lines belong to this attempt.
  local banner
  banner="===== stack.sh: starting Kafka $what at $(date -Is) ====="
  echo "$banner" >>"$logs/server.log"
  echo "$banner" >>"$logs/stdout.log"
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
      exec "$@"' kafka-launcher "$pid_file" \
    java $heap \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$KAFKA_LOG4J_CONFIG" \
      -Dkafka.logs.dir="$logs" \
      -cp "$KAFKA_LIBS/*" \
      kafka.Kafka "$props" \
    </dev/null >>"$logs/stdout.log" 2>&1 &
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

# The settings of a rendered config: its first line (which carries the TLS
# digest) and every non-comment line, so a comment edit restarts nothing.
kafka_config_settings() {
  [[ -f $1 ]] || return 0
  awk 'NR == 1 || !/^[[:space:]]*(#|$)/' "$1"
}

kafka_up() {
  require_java
  kafka_ensure_tls
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  # $KAFKA_PROPS is only ever replaced right before a start, so it is the
  # config the running broker read: a difference means the broker is stale
  # (e.g. started before a listener was added, or with old certificates).
  local pid new="$KAFKA_PROPS.new"
  kafka_render_config "$new"
  if pid="$(kafka_pid)"; then
    if [[ $(kafka_config_settings "$new") == "$(kafka_config_settings "$KAFKA_PROPS")" ]]; then
      rm -f "$new"
      kafka_ensure_libs # same pom: a no-op unless the jars were deleted
      if kafka_answers; then
        log "kafka: already running on $KAFKA_HOST:$KAFKA_PORT"
      else
        # A previous `up` was interrupted while the broker was starting.
        log "kafka: broker process $pid is running, waiting for it"
        kafka_wait_ready
      fi
      kafka_ensure_scram_user
      return 0
    fi
    log "kafka: broker (pid $pid) runs an older config, restarting it; changed settings:"
    diff <(kafka_config_settings "$KAFKA_PROPS") <(kafka_config_settings "$new") |
      sed -n 's/^\([<>]\) \([^#]\)/  \1 \2/p' | head -n 20 >&2 || true
    if diff -q <(kafka_config_settings "$KAFKA_PROPS" | sed 1d) \
      <(kafka_config_settings "$new" | sed 1d) >/dev/null; then
      log "kafka:   (only the TLS certificates or the jars differ)"
    fi
    # Stopped before kafka_ensure_libs may replace the jars under it.
    kafka_down
  elif kafka_answers; then
    rm -f "$new"
    log "kafka: a broker not started by this checkout answers on $KAFKA_HOST:$KAFKA_PORT; leaving it as it is"
    return 0
  fi
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_SSL_PORT" "$KAFKA_MTLS_PORT"; do
    if port_open "$KAFKA_HOST" "$p"; then
      die "kafka: $KAFKA_HOST:$p is in use by a process that is not our broker (check: ss -ltnp; STACK_KAFKA_*_PORT move ours)"
    fi
  done
  kafka_ensure_libs
  mv "$new" "$KAFKA_PROPS"
  kafka_format_storage
  kafka_start
  kafka_wait_ready
  kafka_ensure_scram_user
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
  kafka_terminate "$pid" kafka
  rm -f "$KAFKA_PID_FILE"
  log "kafka: stopped"
}

# True while process $1 exists and is not a finished zombie. A zombie holds no
# port, but a multi-threaded one (the JVM) turns zombie while its other
# threads still exit and still hold its sockets: it counts as alive until it
# is the last task left.
proc_alive() {
  local state
  # The state follows the ")" that ends the command name.
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n $state ]] || return 1
  [[ $state != Z ]] && return 0
  local tasks
  tasks=("/proc/$1/task/"*)
  ((${#tasks[@]} > 1)) && [[ -e ${tasks[1]} ]]
}

# kafka_terminate PID WHAT: SIGTERM, wait up to KAFKA_STOP_TIMEOUT, then
# SIGKILL; returns once the process is gone, so an immediate start can bind.
kafka_terminate() {
  local pid=$1 what=$2
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while proc_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "$what: still alive after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  while proc_alive "$pid"; do sleep 0.2; done
}

kafka_status() {
  if kafka_answers; then
    local pid
    pid="$(kafka_pid)" || pid="not ours"
    echo "kafka:    running  $KAFKA_HOST:$KAFKA_PORT (pid $pid)"
    local name port
    for name in SASL_SSL:$KAFKA_SASL_SSL_PORT MTLS:$KAFKA_MTLS_PORT; do
      port=${name#*:}
      if port_open "$KAFKA_HOST" "$port"; then
        echo "kafka:    listening $KAFKA_HOST:$port (${name%%:*}, CA $KAFKA_TLS_DIR/ca.pem)"
      else
        echo "kafka:    missing  $KAFKA_HOST:$port (${name%%:*}; \`up\` restarts the broker with it)"
      fi
    done
  else
    echo "kafka:    stopped  $KAFKA_HOST:$KAFKA_PORT"
    return 1
  fi
}

############################################################################
# Entry points
############################################################################

# $1: which part, "kafka", "postgres", "cluster" or "" for the first two.
# PostgreSQL is the machine's cluster, shared by every checkout; Kafka (the
# single broker and the three-node cluster) is this checkout's own. So
# `down kafka` stops this checkout's broker and nothing else.
cmd_up() {
  if [[ $1 == cluster ]]; then
    cluster_up
    return
  fi
  # PostgreSQL first: it is fast, and a missing apt package is better
  # discovered before waiting on the JVM.
  [[ $1 == kafka ]] || pg_up
  [[ $1 == postgres ]] || kafka_up
}

cmd_down() {
  if [[ $1 == cluster ]]; then
    cluster_down
    return
  fi
  local rc=0
  if [[ $1 != postgres ]]; then kafka_down || rc=1; fi
  if [[ $1 != kafka ]]; then pg_down || rc=1; fi
  return "$rc"
}

cmd_status() {
  if [[ $1 == cluster ]]; then
    cluster_status
    return
  fi
  local rc=0
  if [[ $1 != postgres ]]; then kafka_status || rc=1; fi
  if [[ $1 != kafka ]]; then pg_status || rc=1; fi
  return "$rc"
}

usage() {
  echo "usage: $0 up|down|status [kafka|postgres|cluster|standby|ha]" >&2
  echo "       $0 broker stop|start|kill N   (node N of the cluster: 1, 2 or 3)" >&2
  echo "       $0 promote [standby]|ha | demote ha | stop-primary ha | synchronous ha on|off" >&2
  echo "       $0 restart-primary ha [SECONDS] | failover ha [SECONDS] | rejoin ha" >&2
  echo "       $0 switchover ha [SECONDS] | read-only ha on|off" >&2
  exit 2
}

main() {
  if [[ ${1:-} == broker ]]; then
    (($# == 3)) || usage
    cmd_broker "$2" "$3"
    return
  fi
  local part=${2:-}
  case ${1:-}:$part in
    up:standby) standby_up ;;
    down:standby) standby_down ;;
    status:standby | status:ha) replica_status "$part" ;;
    up:ha) ha_up ;;
    down:ha) ha_down ;;
    promote: | promote:standby) replica_promote standby ;;
    promote:ha) replica_promote ha ;;
    demote:ha) ha_demote ;;
    stop-primary:ha) ha_stop_primary ;;
    restart-primary:ha) ha_restart_primary "${3:-0}" ;;
    failover:ha) ha_failover "${3:-0}" ;;
    rejoin:ha) ha_rejoin ;;
    switchover:ha) ha_switchover "${3:-0}" ;;
    synchronous:ha) ha_synchronous "${3:-}" ;;
    read-only:ha) ha_read_only "${3:-}" ;;
    up: | up:kafka | up:postgres | up:cluster) cmd_up "$part" ;;
    down: | down:kafka | down:postgres | down:cluster) cmd_down "$part" ;;
    status: | status:kafka | status:postgres | status:cluster) cmd_status "$part" ;;
    *) usage ;;
  esac
}

main "$@"
