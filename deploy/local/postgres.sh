# shellcheck shell=bash
# PostgreSQL part of the local stack. Sourced by deploy/local/stack.sh (not
# meant to be executed on its own); provides pg_up, pg_down, pg_status.
#
# We use the distribution's cluster (Debian/Ubuntu postgresql-common:
# pg_createcluster / pg_ctlcluster) instead of a private initdb under .local/
# because it is what CI images and developer machines already have, and the
# cluster's durability settings stay the packaged defaults.
#
# Requires root or passwordless sudo (installing packages, starting the
# cluster, running psql as the postgres OS user).

PG_HOST=127.0.0.1
PG_PORT=5432
PG_CLUSTER=main
PG_APP_USER=fulfillment
PG_APP_PASSWORD=fulfillment
PG_APP_DB=fulfillment
PG_READY_TIMEOUT=60
# Filled in by pg_detect_version.
PG_VERSION=""

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

# Runs a command as the postgres OS user (peer auth over the Unix socket).
# cd / first so psql doesn't warn about an unreadable cwd such as /root.
as_postgres() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && sudo -n -u postgres -- "$@")
  fi
}

pg_log_file() {
  echo "/var/log/postgresql/postgresql-${PG_VERSION}-${PG_CLUSTER}.log"
}

pg_print_log_tail() {
  local log
  log="$(pg_log_file)"
  echo "---- last 60 lines of $log ----" >&2
  as_root tail -n 60 "$log" >&2 || echo "(no log at $log)" >&2
  echo "---- end of $log ----" >&2
}

# A real login as the application role, not just "port open": this is what
# the service and its tests will do.
pg_answers() {
  command -v pg_isready >/dev/null 2>&1 || return 1
  pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 || return 1
  PGPASSWORD="$PG_APP_PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -t -A \
    -h "$PG_HOST" -p "$PG_PORT" -U "$PG_APP_USER" -d "$PG_APP_DB" \
    -c 'select 1' >/dev/null 2>&1
}

# The server package, not just the client (which CI images often have).
pg_installed() {
  command -v pg_ctlcluster >/dev/null 2>&1 &&
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

pg_install_if_missing() {
  pg_installed && return 0
  log "postgres: server not installed, installing the postgresql package (apt-get)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
}

# Newest installed server major version (e.g. 15). A CI image may carry a
# different major than Debian 12's 15; all supported versions behave the same
# here. Looks for bin/postgres because client-only packages also create
# /usr/lib/postgresql/<ver>.
pg_detect_version() {
  local bin versions=()
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x $bin ]] && versions+=("$(basename "$(dirname "$(dirname "$bin")")")")
  done
  if ((${#versions[@]} == 0)); then
    die "postgres: no server binary found under /usr/lib/postgresql/*/bin"
  fi
  PG_VERSION="$(printf '%s\n' "${versions[@]}" | sort -V | tail -n 1)"
}

# Prints "<port> <status>" of our cluster, nothing if it does not exist.
pg_cluster_info() {
  pg_lsclusters -h 2>/dev/null |
    awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c { print $3, $4 }'
}

pg_ensure_cluster() {
  if [[ -z $(pg_cluster_info) ]]; then
    log "postgres: creating cluster $PG_VERSION/$PG_CLUSTER on port $PG_PORT"
    as_root pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT"
  fi
  local port
  port="$(pg_cluster_info | awk '{print $1}')"
  if [[ $port != "$PG_PORT" ]]; then
    # Happens when another cluster already owned 5432 when this one was
    # created; we refuse to guess which one the developer wants.
    die "postgres: cluster $PG_VERSION/$PG_CLUSTER is configured for port $port, expected $PG_PORT (see pg_lsclusters)"
  fi
}

pg_start_cluster() {
  local status
  status="$(pg_cluster_info | awk '{print $2}')"
  if [[ $status == online* ]]; then
    return 0
  fi
  log "postgres: starting cluster $PG_VERSION/$PG_CLUSTER (log: $(pg_log_file))"
  # --skip-systemctl-redirect: there may be no systemd (containers, CI);
  # start the server directly via pg_ctl either way.
  if ! as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start; then
    pg_print_log_tail
    die "postgres: pg_ctlcluster start failed"
  fi
}

pg_wait_ready() {
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  until pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; do
    if ((SECONDS >= deadline)); then
      pg_print_log_tail
      die "postgres: not accepting connections on $PG_HOST:$PG_PORT after ${PG_READY_TIMEOUT}s"
    fi
    sleep 0.5
  done
}

# Idempotent: (re)asserts the role's attributes and password every time, so a
# role created by hand with another password gets fixed too.
pg_provision() {
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP_USER') THEN
    CREATE ROLE $PG_APP_USER;
  END IF;
END
\$\$;
ALTER ROLE $PG_APP_USER WITH LOGIN CREATEDB PASSWORD '$PG_APP_PASSWORD';
SELECT 'CREATE DATABASE $PG_APP_DB OWNER $PG_APP_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_APP_DB')
\gexec
SQL
}

pg_up() {
  if pg_answers; then
    log "postgres: already running on $PG_HOST:$PG_PORT"
    return 0
  fi
  pg_install_if_missing
  pg_detect_version
  pg_ensure_cluster
  pg_start_cluster
  pg_wait_ready
  if ! pg_provision; then
    pg_print_log_tail
    die "postgres: creating role/database '$PG_APP_USER'/'$PG_APP_DB' failed"
  fi
  if ! pg_answers; then
    pg_print_log_tail
    die "postgres: login as $PG_APP_USER@$PG_HOST:$PG_PORT/$PG_APP_DB failed"
  fi
  log "postgres: ready on $PG_HOST:$PG_PORT (db=$PG_APP_DB user=$PG_APP_USER, log: $(pg_log_file))"
}

pg_down() {
  if ! pg_installed; then
    log "postgres: not installed, nothing to stop"
    return 0
  fi
  pg_detect_version
  local status
  status="$(pg_cluster_info | awk '{print $2}')"
  if [[ $status != online* ]]; then
    log "postgres: cluster $PG_VERSION/$PG_CLUSTER already stopped"
    return 0
  fi
  log "postgres: stopping cluster $PG_VERSION/$PG_CLUSTER"
  # Default mode is "fast": disconnects clients instead of waiting for them.
  as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" stop
}

# One line; returns 0 when the application login works.
pg_status() {
  if pg_answers; then
    echo "postgres: running  postgresql://$PG_APP_USER@$PG_HOST:$PG_PORT/$PG_APP_DB"
  else
    echo "postgres: stopped  postgresql://$PG_APP_USER@$PG_HOST:$PG_PORT/$PG_APP_DB"
    return 1
  fi
}
