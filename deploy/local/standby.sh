# shellcheck shell=bash
# Streaming replicas of the local PostgreSQL, as Debian clusters next to "main". Sourced by
# deploy/local/stack.sh after postgres.sh; provides the `standby` and `ha` parts:
#
#   standby  cluster "standby" on 5433: a hot standby of the shared "main" (5432), streaming
#            from it through the replication slot "fulfillment_standby". `promote standby`
#            makes it a primary of its own; "main" is never demoted, stopped or restarted (it
#            serves everyone's tests): nothing on it changes but the slot (a reload at most).
#   ha       a pair of the script's own for failover tests: cluster "ha_a" on 5434 (the primary,
#            role and database "fulfillment" as on main) and cluster "ha_b" on 5435, its hot
#            standby (slot "ha_b"), replicating synchronously (synchronous_standby_names = '*').
#            `promote ha` promotes ha_b, `demote ha` leaves ha_a running read-only
#            (default_transaction_read_only, a reload), `read-only ha on|off` does so to (or
#            undoes it on) whichever is the primary, `stop-primary ha` stops ha_a. `up ha`
#            rebuilds the pair from scratch whenever it is not primary + streaming standby.
#            Whichever of the two is the primary: `restart-primary ha [SECONDS]` restarts it, `failover
#            ha [SECONDS]` stops it and promotes its standby, `rejoin ha` makes the stopped one
#            a synchronous standby of the new primary again, `switchover ha [SECONDS]` promotes
#            the standby of a primary left running read-only (the proof's faults, tests/proof).
#
# Replicas are made with pg_basebackup -R over the Unix socket as the postgres OS user
# (Debian's pg_hba.conf allows `local replication all peer`), so no role or password is added.

STANDBY_CLUSTER=standby
STANDBY_PORT=5433
STANDBY_SLOT=fulfillment_standby
HA_PRIMARY=ha_a
HA_PRIMARY_PORT=5434
HA_STANDBY=ha_b
HA_STANDBY_PORT=5435

# "<port> <status>" of cluster $1.
cluster_info() {
  pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$1" '$1 == v && $2 == c { print $3, $4 }'
}

# psql as postgres on port $1; unaligned tuples only.
sql_on() {
  local port=$1
  shift
  as_postgres psql -X -q -t -A -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"
}

wait_answers() {
  local port=$1 deadline=$((SECONDS + PG_READY_TIMEOUT))
  until pg_isready -q -h "$PG_HOST" -p "$port" -t 2; do
    ((SECONDS < deadline)) || die "postgres: nothing answers on $PG_HOST:$port after ${PG_READY_TIMEOUT}s"
    sleep 0.3
  done
}

# True when the cluster on port $1 is a standby whose WAL receiver streams.
streaming() {
  [[ $(sql_on "$1" -c "SELECT pg_is_in_recovery() AND EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming')" 2>/dev/null) == t ]]
}

drop_cluster() {
  local cluster=$1
  [[ -n $(cluster_info "$cluster") ]] || return 0
  log "postgres: dropping cluster $PG_VERSION/$cluster"
  as_root pg_dropcluster --stop "$PG_VERSION" "$cluster"
}

start_cluster() {
  as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$1" start ||
    die "postgres: starting $PG_VERSION/$1 failed (log: /var/log/postgresql/postgresql-$PG_VERSION-$1.log)"
}

# A new cluster $1 on port $2, a hot standby of the cluster on port $3 through slot $4.
make_replica() {
  local cluster=$1 port=$2 from=$3 slot=$4 data
  drop_cluster "$cluster"
  if [[ $(sql_on "$from" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'") != 0 ]]; then
    sql_on "$from" -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null
  fi
  log "postgres: creating $PG_VERSION/$cluster on port $port, a standby of port $from (slot $slot)"
  as_root pg_createcluster "$PG_VERSION" "$cluster" --port "$port" >/dev/null
  data="$(pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$cluster" '$1 == v && $2 == c { print $6 }')"
  as_root find "$data" -mindepth 1 -delete
  as_postgres pg_basebackup -h /var/run/postgresql -p "$from" -U postgres -D "$data" \
    -R -X stream -C -S "$slot" --checkpoint=fast ||
    die "postgres: pg_basebackup from port $from failed"
  start_cluster "$cluster"
  wait_answers "$port"
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  until streaming "$port"; do
    ((SECONDS < deadline)) || die "postgres: $PG_VERSION/$cluster does not stream from port $from"
    sleep 0.3
  done
  log "postgres: $PG_VERSION/$cluster streams from port $from"
}

standby_up() {
  pg_detect_version
  pg_answers || die "postgres: main is not running on $PG_PORT (make up)"
  if streaming "$STANDBY_PORT"; then
    log "postgres: $PG_VERSION/$STANDBY_CLUSTER already streams on $PG_HOST:$STANDBY_PORT"
    return 0
  fi
  make_replica "$STANDBY_CLUSTER" "$STANDBY_PORT" "$PG_PORT" "$STANDBY_SLOT"
}

standby_down() {
  pg_detect_version
  drop_cluster "$STANDBY_CLUSTER"
  # A slot nobody reads would keep every WAL segment on main from now on.
  if pg_answers && [[ $(sql_on "$PG_PORT" -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$STANDBY_SLOT'") != 0 ]]; then
    sql_on "$PG_PORT" -c "SELECT pg_drop_replication_slot('$STANDBY_SLOT')" >/dev/null
    log "postgres: dropped slot $STANDBY_SLOT on main"
  fi
}

ha_ready() {
  [[ $(cluster_info "$HA_PRIMARY") == "$HA_PRIMARY_PORT online" ]] || return 1
  [[ $(sql_on "$HA_PRIMARY_PORT" -c "SELECT NOT pg_is_in_recovery() AND NOT current_setting('default_transaction_read_only')::bool" 2>/dev/null) == t ]] || return 1
  streaming "$HA_STANDBY_PORT"
}

ha_up() {
  pg_detect_version
  if ha_ready; then
    log "postgres: HA pair ready: primary $PG_HOST:$HA_PRIMARY_PORT, standby $PG_HOST:$HA_STANDBY_PORT"
    return 0
  fi
  drop_cluster "$HA_STANDBY"
  drop_cluster "$HA_PRIMARY"
  log "postgres: creating $PG_VERSION/$HA_PRIMARY on port $HA_PRIMARY_PORT"
  as_root pg_createcluster "$PG_VERSION" "$HA_PRIMARY" --port "$HA_PRIMARY_PORT" >/dev/null
  start_cluster "$HA_PRIMARY"
  wait_answers "$HA_PRIMARY_PORT"
  # pg_provision runs psql on the socket; PGPORT picks the cluster.
  PGPORT=$HA_PRIMARY_PORT pg_provision || die "postgres: provisioning $HA_PRIMARY failed"
  # The HA deployment's durability: a commit returns once the standby has flushed it.
  sql_on "$HA_PRIMARY_PORT" -c "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
  sql_on "$HA_PRIMARY_PORT" -c "SELECT pg_reload_conf()" >/dev/null
  make_replica "$HA_STANDBY" "$HA_STANDBY_PORT" "$HA_PRIMARY_PORT" "$HA_STANDBY"
  log "postgres: HA pair ready: primary $PG_HOST:$HA_PRIMARY_PORT, standby $PG_HOST:$HA_STANDBY_PORT"
}

ha_down() {
  pg_detect_version
  drop_cluster "$HA_STANDBY"
  drop_cluster "$HA_PRIMARY"
}

# Promotes the standby of part $1 and waits until it takes writes.
replica_promote() {
  pg_detect_version
  case $1 in
    standby) promote_cluster "$STANDBY_CLUSTER" "$STANDBY_PORT" ;;
    ha) promote_cluster "$HA_STANDBY" "$HA_STANDBY_PORT" ;;
  esac
}

# Promotes cluster $1 (port $2), a standby, and waits until it takes writes.
promote_cluster() {
  local cluster=$1 port=$2
  as_root pg_ctlcluster "$PG_VERSION" "$cluster" promote ||
    die "postgres: promoting $PG_VERSION/$cluster failed"
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  until [[ $(sql_on "$port" -c "SELECT pg_is_in_recovery()" 2>/dev/null) == f ]]; do
    ((SECONDS < deadline)) || die "postgres: $PG_VERSION/$cluster still in recovery"
    sleep 0.1
  done
  # The new primary has no standby: waiting for one would stop every commit.
  sql_on "$port" -c "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
  sql_on "$port" -c "SELECT pg_reload_conf()" >/dev/null
  log "postgres: $PG_VERSION/$cluster on port $port is a primary"
}

ha_demote() {
  pg_detect_version
  sql_on "$HA_PRIMARY_PORT" -c "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
  sql_on "$HA_PRIMARY_PORT" -c "SELECT pg_reload_conf()" >/dev/null
  log "postgres: $PG_VERSION/$HA_PRIMARY on port $HA_PRIMARY_PORT runs read-only"
}

# `read-only ha on|off`: whichever of the pair is the primary (not in recovery) made to refuse
# writes, or writable again: default_transaction_read_only by ALTER SYSTEM and a reload, so its
# open sessions stay open and their next transactions are read-only (a write fails with 25006),
# as a primary demoted without being stopped; new read-write connections find no host.
ha_read_only() {
  pg_detect_version
  local entry port change
  case ${1:-} in
    on) change="ALTER SYSTEM SET default_transaction_read_only = on" ;;
    off) change="ALTER SYSTEM RESET default_transaction_read_only" ;;
    *) die "read-only ha on|off" ;;
  esac
  for entry in "$HA_PRIMARY:$HA_PRIMARY_PORT" "$HA_STANDBY:$HA_STANDBY_PORT"; do
    port=${entry#*:}
    if [[ $(sql_on "$port" -c "SELECT NOT pg_is_in_recovery()" 2>/dev/null) == t ]]; then
      sql_on "$port" -c "$change" >/dev/null
      sql_on "$port" -c "SELECT pg_reload_conf()" >/dev/null
      log "postgres: $PG_VERSION/${entry%:*} on port $port read-only $1"
      return 0
    fi
  done
  die "postgres: no server of the HA pair is a primary"
}

# synchronous_standby_names on ha_a: '*' (on) or empty (off), for measuring what it costs.
ha_synchronous() {
  pg_detect_version
  case $1 in
    on) sql_on "$HA_PRIMARY_PORT" -c "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null ;;
    off) sql_on "$HA_PRIMARY_PORT" -c "ALTER SYSTEM SET synchronous_standby_names = ''" >/dev/null ;;
    *) die "synchronous ha on|off" ;;
  esac
  sql_on "$HA_PRIMARY_PORT" -c "SELECT pg_reload_conf()" >/dev/null
  log "postgres: $PG_VERSION/$HA_PRIMARY replicates $([[ $1 == on ]] && echo synchronously || echo asynchronously)"
}

# "<cluster> <port>" of the pair's server that takes writes: running, not in recovery, not
# read-only. After `failover ha` that may be either of the two.
ha_primary() {
  local entry port
  for entry in "$HA_PRIMARY:$HA_PRIMARY_PORT" "$HA_STANDBY:$HA_STANDBY_PORT"; do
    port=${entry#*:}
    if [[ $(sql_on "$port" -c "SELECT NOT pg_is_in_recovery() AND NOT current_setting('default_transaction_read_only')::bool" 2>/dev/null) == t ]]; then
      echo "${entry%:*} $port"
      return 0
    fi
  done
  return 1
}

# "<cluster> <port>" of the pair's other server than cluster $1.
ha_other() {
  if [[ $1 == "$HA_PRIMARY" ]]; then echo "$HA_STANDBY $HA_STANDBY_PORT"; else echo "$HA_PRIMARY $HA_PRIMARY_PORT"; fi
}

# `restart-primary ha [SECONDS]`: the server taking writes stopped (fast shutdown: sessions
# are ended, the standby gets every WAL record first), down SECONDS (default 0) and started
# again; returns once it answers and its standby streams from it again.
ha_restart_primary() {
  pg_detect_version
  local wait=${1:-0} cluster port
  [[ $wait =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "restart-primary ha [SECONDS]"
  read -r cluster port < <(ha_primary) || die "postgres: no server of the HA pair takes writes"
  log "postgres: restarting $PG_VERSION/$cluster on port $port (fast shutdown, ${wait}s down)"
  as_root pg_ctlcluster --skip-systemctl-redirect -m fast "$PG_VERSION" "$cluster" stop ||
    die "postgres: stopping $PG_VERSION/$cluster failed"
  sleep "$wait"
  start_cluster "$cluster"
  wait_answers "$port"
  log "postgres: $PG_VERSION/$cluster on port $port restarted"
  local other other_port
  read -r other other_port < <(ha_other "$cluster")
  wait_streaming "$other" "$other_port"
}

# Waits until cluster $1 (port $2) streams from its primary (a standby retries every 5 s).
wait_streaming() {
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  until streaming "$2"; do
    ((SECONDS < deadline)) || die "postgres: $PG_VERSION/$1 on port $2 is not a streaming standby"
    sleep 0.3
  done
}

# `failover ha [SECONDS]`: the primary stopped (fast shutdown), SECONDS (default 0) without one,
# then its standby promoted; whichever of the two is the primary. `rejoin ha` makes the old one
# the new primary's standby, so that the next failover goes the other way.
ha_failover() {
  pg_detect_version
  local wait=${1:-0} old old_port new new_port
  [[ $wait =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "failover ha [SECONDS]"
  read -r old old_port < <(ha_primary) || die "postgres: no server of the HA pair takes writes"
  read -r new new_port < <(ha_other "$old")
  wait_streaming "$new" "$new_port"
  as_root pg_ctlcluster --skip-systemctl-redirect -m fast "$PG_VERSION" "$old" stop ||
    die "postgres: stopping $PG_VERSION/$old failed"
  log "postgres: $PG_VERSION/$old on port $old_port stopped"
  sleep "$wait"
  promote_cluster "$new" "$new_port"
}

# `switchover ha [SECONDS]`: the primary demoted without being stopped (read-only, its sessions
# left open, as `read-only ha on`), SECONDS (default 0) without a primary, then its standby
# promoted once it has replayed all the old one wrote; the old one keeps answering read-only
# until `rejoin ha` makes it the new primary's standby. Whichever of the two is the primary.
ha_switchover() {
  pg_detect_version
  local wait=${1:-0} old old_port new new_port lsn
  [[ $wait =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "switchover ha [SECONDS]"
  read -r old old_port < <(ha_primary) || die "postgres: no server of the HA pair takes writes"
  read -r new new_port < <(ha_other "$old")
  wait_streaming "$new" "$new_port"
  sql_on "$old_port" -c "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
  sql_on "$old_port" -c "SELECT pg_reload_conf()" >/dev/null
  log "postgres: $PG_VERSION/$old on port $old_port runs read-only"
  sleep "$wait"
  lsn=$(sql_on "$old_port" -c "SELECT pg_current_wal_lsn()")
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  until [[ $(sql_on "$new_port" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null) == t ]]; do
    ((SECONDS < deadline)) || die "postgres: $PG_VERSION/$new did not replay up to $lsn"
    sleep 0.1
  done
  promote_cluster "$new" "$new_port"
}

# `rejoin ha`: the pair's server that is not the primary made again (pg_basebackup) as the
# primary's synchronous standby.
ha_rejoin() {
  pg_detect_version
  local primary port other other_port
  read -r primary port < <(ha_primary) || die "postgres: no server of the HA pair takes writes"
  read -r other other_port < <(ha_other "$primary")
  if streaming "$other_port"; then
    log "postgres: $PG_VERSION/$other already streams from port $port"
  else
    make_replica "$other" "$other_port" "$port" "$other"
  fi
  sql_on "$port" -c "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
  sql_on "$port" -c "SELECT pg_reload_conf()" >/dev/null
  log "postgres: $PG_VERSION/$primary on port $port replicates synchronously to $other on $other_port"
}

ha_stop_primary() {
  pg_detect_version
  as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$HA_PRIMARY" stop
  log "postgres: $PG_VERSION/$HA_PRIMARY on port $HA_PRIMARY_PORT stopped"
}

replica_status() {
  pg_detect_version
  local part=$1 cluster port
  case $part in
    standby) cluster=$STANDBY_CLUSTER port=$STANDBY_PORT ;;
    ha) cluster=$HA_STANDBY port=$HA_STANDBY_PORT ;;
  esac
  if [[ $part == ha ]] && ha_ready; then
    echo "postgres: HA pair  primary $PG_HOST:$HA_PRIMARY_PORT, standby $PG_HOST:$HA_STANDBY_PORT (synchronous)"
  elif streaming "$port"; then
    echo "postgres: standby  $PG_HOST:$port ($PG_VERSION/$cluster streaming)"
  else
    echo "postgres: $part not ready ($(pg_lsclusters -h | awk -v v="$PG_VERSION" '$1 == v { printf "%s:%s %s; ", $2, $3, $4 }'))"
    return 1
  fi
}
