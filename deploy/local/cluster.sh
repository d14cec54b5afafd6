# shellcheck shell=bash
# The local three-node Kafka cluster: Kafka 4.1 from the same jars as the
# single broker (<repo>/.local/kafka/libs), each node a broker and a KRaft
# controller (three voters), on loopback, plaintext:
#
#   node  client (PLAINTEXT)   controller        PROXIED (advertised as)
#   1     127.0.0.1:29092      127.0.0.1:29192   127.0.0.1:29292 (39292)
#   2     127.0.0.1:29093      127.0.0.1:29193   127.0.0.1:29293 (39293)
#   3     127.0.0.1:29094      127.0.0.1:29194   127.0.0.1:29294 (39294)
#
# PROXIED is for the proof's network cut between the service and Kafka: it
# advertises ports nobody listens on but the proof's TCP proxies (39292-39294,
# each to its node's 2929N), so clients that bootstrap there reach the
# cluster only through them (deploy/local/kafka/cluster.properties).
#
# Topics get replication factor 3 and min.insync.replicas=2 by default
# (deploy/local/kafka/cluster.properties). Each node's state (data, logs,
# pid, rendered config) is in <repo>/.local/kafka-cluster/broker-N. The
# cluster is independent of the single broker: both may run at once.
# STACK_KAFKA_CLUSTER_PORT and STACK_KAFKA_CLUSTER_CONTROLLER_PORT move the
# first node's ports (the others follow, +1 and +2).
#
# Sourced by deploy/local/stack.sh; uses its log, die, require_java,
# kafka_ensure_libs, kafka_launch, kafka_terminate, proc_alive, port_open.

CLUSTER_HOME="$REPO_ROOT/.local/kafka-cluster"
CLUSTER_PROPS_TEMPLATE="$KAFKA_SRC_DIR/cluster.properties"
CLUSTER_NODES=(1 2 3)
CLUSTER_PORT="${STACK_KAFKA_CLUSTER_PORT:-29092}"
CLUSTER_CONTROLLER_PORT="${STACK_KAFKA_CLUSTER_CONTROLLER_PORT:-29192}"
# Not the single broker's id: the two must never take each other's data.
CLUSTER_ID="${KAFKA_CLUSTER_CLUSTER_ID:-sFu1fi11mentThreeNodeA}"
# Three JVMs and the single broker share a small machine.
CLUSTER_HEAP_OPTS="${STACK_KAFKA_CLUSTER_HEAP_OPTS:--Xms256m -Xmx768m}"

cluster_dir() { echo "$CLUSTER_HOME/broker-$1"; }
cluster_port() { echo $((CLUSTER_PORT + $1 - 1)); }
cluster_controller_port() { echo $((CLUSTER_CONTROLLER_PORT + $1 - 1)); }
cluster_proxied_port() { echo $((CLUSTER_PORT + 200 + $1 - 1)); }
cluster_proxy_port() { echo $((CLUSTER_PORT + 10200 + $1 - 1)); }

cluster_bootstrap() {
  local n out=""
  for n in "${CLUSTER_NODES[@]}"; do out+="${out:+,}$KAFKA_HOST:$(cluster_port "$n")"; done
  echo "$out"
}

cluster_check_node() {
  [[ ${1:-} =~ ^[123]$ ]] || {
    echo "usage: $0 broker stop|start|kill N   (N is 1, 2 or 3)" >&2
    exit 2
  }
}

# The pid of node $1, if that process is running it (its command line names
# this node's config, so neither a recycled pid nor the single broker counts).
cluster_pid() {
  local pid_file pid
  pid_file="$(cluster_dir "$1")/kafka.pid"
  [[ -f $pid_file ]] || return 1
  pid="$(<"$pid_file")"
  [[ $pid =~ ^[0-9]+$ ]] && proc_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
    grep -qF "kafka.Kafka $(cluster_dir "$1")/server.properties" || return 1
  echo "$pid"
}

# True when the launcher wrote node $1's pid file (before it execs java) and
# that process is gone: the JVM died (bad config, port taken, ...).
cluster_node_died() {
  local pid_file pid
  pid_file="$(cluster_dir "$1")/kafka.pid"
  [[ -f $pid_file ]] || return 1
  pid="$(<"$pid_file")"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  ! proc_alive "$pid"
}

cluster_print_log_tail() {
  local f
  f="$(cluster_dir "$1")/logs/server.log"
  [[ -s $f ]] || f="$(cluster_dir "$1")/logs/stdout.log"
  [[ -s $f ]] || return 0
  echo "---- last lines (max 40) of $f ----" >&2
  awk -v max=40 '
    /^===== stack.sh: starting/ { n = 0 }
    { buf[n % max] = $0; n++ }
    END { for (i = (n > max ? n - max : 0); i < n; i++) print buf[i % max] }
  ' "$f" >&2
  echo "---- end of $f ----" >&2
}

# Node $1 serves once its log, since the newest start banner, says the
# server started: Kafka writes that after the broker caught up with the
# metadata, was unfenced by the controller and opened its listeners. A log
# without a banner was rolled over since (50 MB, log4j2.yaml): that start is
# long past.
cluster_node_started() {
  local f
  f="$(cluster_dir "$1")/logs/server.log"
  [[ -f $f ]] || return 1
  awk -v id="$1" '
    /^===== stack.sh: starting/ { banner = 1; up = 0 }
    index($0, "[KafkaRaftServer nodeId=" id "] Kafka Server started") { up = 1 }
    END { exit !(up || !banner) }
  ' "$f"
}

# The ids of the nodes that the cluster's metadata lists as serving brokers
# (registered, unfenced) and that answered an ApiVersions request, one a line.
cluster_serving_ids() {
  [[ -f $KAFKA_LIBS_MARKER ]] || return 0
  timeout 30 java -Xmx128m -cp "$KAFKA_LIBS/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$(cluster_bootstrap)" 2>/dev/null |
    sed -n 's/^.*(id: \([0-9]*\) rack: [^)]*) -> (.*$/\1/p' | sort -u
}

cluster_render_config() {
  local n=$1 out=$2 voters="" v jars
  for v in "${CLUSTER_NODES[@]}"; do
    voters+="${voters:+,}$v@$KAFKA_HOST:$(cluster_controller_port "$v")"
  done
  jars="$(sha256sum "$KAFKA_POM" | awk '{print $1}')"
  {
    echo "# Rendered by deploy/local/stack.sh from deploy/local/kafka/cluster.properties; sha256 of pom.xml $jars"
    sed -e "s|@NODE_ID@|$n|g" \
      -e "s|@QUORUM_VOTERS@|$voters|g" \
      -e "s|@KAFKA_PORT@|$(cluster_port "$n")|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$(cluster_controller_port "$n")|g" \
      -e "s|@KAFKA_PROXIED_PORT@|$(cluster_proxied_port "$n")|g" \
      -e "s|@KAFKA_PROXY_PORT@|$(cluster_proxy_port "$n")|g" \
      -e "s|@KAFKA_DATA_DIR@|$(cluster_dir "$n")/data|g" \
      "$CLUSTER_PROPS_TEMPLATE"
  } >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then
    die "kafka-cluster: unfilled placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -n 1)"
  fi
}

cluster_format_storage() {
  local d
  d="$(cluster_dir "$1")"
  [[ -f $d/data/meta.properties ]] && return 0
  log "kafka-cluster: formatting node $1's storage (cluster id $CLUSTER_ID)"
  kafka_tool kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$d/server.properties" \
    >"$d/logs/format.log" 2>&1 || {
    cat "$d/logs/format.log" >&2
    die "kafka-cluster: storage format of node $1 failed"
  }
}

cluster_start_node() {
  local d
  d="$(cluster_dir "$1")"
  log "kafka-cluster: starting node $1 on $KAFKA_HOST:$(cluster_port "$1") (logs: $d/logs/server.log)"
  kafka_launch "$d/kafka.pid" "$d/logs" "$d/server.properties" "$CLUSTER_HEAP_OPTS" "cluster node $1"
}

# Waits until every node named serves. A node needs a controller quorum to
# get there: two of the three must be running.
cluster_wait_started() {
  local t0 deadline n pending=("$@") left
  t0="$(now_ms)"
  deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
  while ((${#pending[@]} > 0)); do
    left=()
    for n in "${pending[@]}"; do
      if cluster_node_died "$n"; then
        cluster_print_log_tail "$n"
        die "kafka-cluster: node $n exited during startup"
      fi
      if cluster_pid "$n" >/dev/null && cluster_node_started "$n" && port_open "$KAFKA_HOST" "$(cluster_port "$n")"; then
        log "kafka-cluster: node $n serves on $KAFKA_HOST:$(cluster_port "$n") after $(($(now_ms) - t0))ms"
      else
        left+=("$n")
      fi
    done
    pending=("${left[@]}")
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for n in "${pending[@]}"; do cluster_print_log_tail "$n"; done
      die "kafka-cluster: node(s) ${pending[*]} not serving after ${KAFKA_READY_TIMEOUT}s (a node needs two of the three running; 'down cluster' stops them)"
    fi
    sleep 0.5
  done
}

cluster_up() {
  require_java
  local n pid d new stale=() start=()
  for n in "${CLUSTER_NODES[@]}"; do
    d="$(cluster_dir "$n")"
    mkdir -p "$d/data" "$d/logs"
    new="$d/server.properties.new"
    cluster_render_config "$n" "$new"
    if pid="$(cluster_pid "$n")"; then
      if [[ $(kafka_config_settings "$new") == "$(kafka_config_settings "$d/server.properties")" ]]; then
        rm -f "$new"
        continue
      fi
      log "kafka-cluster: node $n (pid $pid) runs an older config, restarting it"
      stale+=("$n")
    fi
    start+=("$n")
  done
  # Stale nodes stop before kafka_ensure_libs may replace the jars under them.
  ((${#stale[@]} == 0)) || cluster_stop_nodes "${stale[@]}"
  local p
  for n in "${start[@]}"; do
    for p in "$(cluster_port "$n")" "$(cluster_controller_port "$n")" "$(cluster_proxied_port "$n")"; do
      if port_open "$KAFKA_HOST" "$p"; then
        die "kafka-cluster: $KAFKA_HOST:$p is in use by a process that is not node $n (check: ss -ltnp; STACK_KAFKA_CLUSTER_*PORT move the cluster)"
      fi
    done
  done
  kafka_ensure_libs
  local formats=() failed=""
  for n in "${start[@]}"; do
    d="$(cluster_dir "$n")"
    mv "$d/server.properties.new" "$d/server.properties"
    # In parallel: on a cold start each is a JVM of its own.
    cluster_format_storage "$n" &
    formats+=("$!")
  done
  for p in "${formats[@]}"; do wait "$p" || failed=1; done
  [[ -z $failed ]] || die "kafka-cluster: formatting storage failed (see above)"
  local t0
  t0="$(now_ms)"
  # All at once: a node waits for a quorum of voters before it serves.
  for n in "${start[@]}"; do cluster_start_node "$n"; done
  cluster_wait_started "${CLUSTER_NODES[@]}"
  # From outside: the metadata lists all three brokers and each answers.
  local ids attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    ids="$(cluster_serving_ids | tr '\n' ' ')"
    [[ $ids == "1 2 3 " ]] && break
    sleep 1
  done
  [[ $ids == "1 2 3 " ]] || die "kafka-cluster: the metadata lists serving brokers '${ids% }', not '1 2 3'"
  if ((${#start[@]} == 0)); then
    log "kafka-cluster: already running on $(cluster_bootstrap)"
  else
    log "kafka-cluster: ready on $(cluster_bootstrap) ($(($(now_ms) - t0))ms after starting node(s) ${start[*]})"
  fi
}

cluster_stop_node() {
  if ! cluster_pid "$1" >/dev/null; then
    rm -f "$(cluster_dir "$1")/kafka.pid"
    log "kafka-cluster: node $1 already stopped"
    return 0
  fi
  cluster_stop_nodes "$1"
}

cluster_kill_node() {
  local pid
  if ! pid="$(cluster_pid "$1")"; then
    log "kafka-cluster: node $1 is not running"
    return 0
  fi
  log "kafka-cluster: killing node $1 (pid $pid, SIGKILL)"
  kill -KILL "$pid" 2>/dev/null || true
  while proc_alive "$pid"; do sleep 0.1; done
  rm -f "$(cluster_dir "$1")/kafka.pid"
  log "kafka-cluster: node $1 killed"
}

# Starts a stopped (or killed) node again with the config it had, and waits
# until it serves.
cluster_start_stopped_node() {
  local d
  d="$(cluster_dir "$1")"
  [[ -f $d/data/meta.properties && -f $d/server.properties ]] ||
    die "kafka-cluster: node $1 was never set up: run 'bash deploy/local/stack.sh up cluster' first"
  if cluster_pid "$1" >/dev/null; then
    log "kafka-cluster: node $1 is running"
  else
    local p
    for p in "$(cluster_port "$1")" "$(cluster_controller_port "$1")" "$(cluster_proxied_port "$1")"; do
      port_open "$KAFKA_HOST" "$p" && die "kafka-cluster: $KAFKA_HOST:$p is in use by a process that is not node $1"
    done
    cluster_start_node "$1"
  fi
  cluster_wait_started "$1"
}

# cluster_stop_nodes N...: SIGTERM to all named nodes at once, then waits for
# each. Stopped one after another, the last node's controlled shutdown would
# wait for a controller quorum that is already gone.
cluster_stop_nodes() {
  local n pid pids=() nodes=()
  for n in "$@"; do
    if pid="$(cluster_pid "$n")"; then
      log "kafka-cluster: stopping node $n (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      nodes+=("$n")
    else
      rm -f "$(cluster_dir "$n")/kafka.pid"
    fi
  done
  local i
  for i in "${!pids[@]}"; do
    kafka_terminate "${pids[$i]}" "kafka-cluster node ${nodes[$i]}"
    rm -f "$(cluster_dir "${nodes[$i]}")/kafka.pid"
    log "kafka-cluster: node ${nodes[$i]} stopped"
  done
}

cluster_down() {
  local n any=""
  for n in "${CLUSTER_NODES[@]}"; do cluster_pid "$n" >/dev/null && any=1; done
  if [[ -z $any ]]; then
    log "kafka-cluster: already stopped"
  else
    cluster_stop_nodes "${CLUSTER_NODES[@]}"
  fi
  for n in "${CLUSTER_NODES[@]}"; do
    if port_open "$KAFKA_HOST" "$(cluster_port "$n")"; then
      log "kafka-cluster: WARNING: something not started by this checkout listens on $KAFKA_HOST:$(cluster_port "$n"); leaving it"
    fi
  done
}

cluster_status() {
  local n pid rc=0 serving="" any=""
  for n in "${CLUSTER_NODES[@]}"; do
    cluster_pid "$n" >/dev/null && any=1
  done
  [[ -n $any ]] && serving=" $(cluster_serving_ids | tr '\n' ' ')"
  for n in "${CLUSTER_NODES[@]}"; do
    if pid="$(cluster_pid "$n")"; then
      if [[ $serving == *" $n "* ]]; then
        echo "kafka-cluster: node $n up    $KAFKA_HOST:$(cluster_port "$n") (pid $pid)"
      else
        echo "kafka-cluster: node $n up    $KAFKA_HOST:$(cluster_port "$n") (pid $pid; not serving yet)"
        rc=1
      fi
    else
      echo "kafka-cluster: node $n down  $KAFKA_HOST:$(cluster_port "$n")"
      rc=1
    fi
  done
  return "$rc"
}

# `broker stop|start|kill N`
cmd_broker() {
  local action=${1:-} n=${2:-}
  cluster_check_node "$n"
  case $action in
    stop) cluster_stop_node "$n" ;;
    kill) cluster_kill_node "$n" ;;
    start)
      require_java
      cluster_start_stopped_node "$n"
      ;;
    *)
      echo "usage: $0 broker stop|start|kill N   (N is 1, 2 or 3)" >&2
      exit 2
      ;;
  esac
}
