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
#
# TLS: the cluster serves a certificate for 127.0.0.1 (SAN IP:127.0.0.1,
# DNS:localhost) signed by a local CA. Both live next to the cluster's config
# (<config dir>/fulfillment-tls, key 0600 owned by postgres), because the
# cluster is the machine's, shared by every checkout; each checkout gets a
# copy of the CA in <repo>/.local/postgres/tls/ca.pem. The CA's private key
# is not kept: renewing means a new CA, which `up` copies again. The role
# fulfillment_tls may only log in over TLS (pg_hba.conf: hostssl, then
# reject); the role fulfillment is untouched and keeps working without TLS.

PG_HOST=127.0.0.1
PG_PORT=5432
PG_CLUSTER=main
PG_APP_USER=fulfillment
PG_APP_PASSWORD=fulfillment
PG_APP_DB=fulfillment
PG_READY_TIMEOUT=60
PG_TLS_USER=fulfillment_tls
PG_TLS_PASSWORD=fulfillment-tls
PG_TLS_CA_COPY="$REPO_ROOT/.local/postgres/tls/ca.pem"
PG_HBA_BEGIN="# BEGIN session-fulfillment: $PG_TLS_USER logs in only over TLS (managed by deploy/local/stack.sh)"
PG_HBA_END="# END session-fulfillment"
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
-- Tests drop their databases WITH (FORCE); PostgreSQL refuses that while an autovacuum worker
-- is in the database unless the role may signal backends.
GRANT pg_signal_backend TO $PG_APP_USER;
SELECT 'CREATE DATABASE $PG_APP_DB OWNER $PG_APP_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_APP_DB')
\gexec
SQL
}

# psql as the postgres superuser; prints unaligned tuples only.
pg_sql() {
  as_postgres psql -X -q -t -A -v ON_ERROR_STOP=1 -d postgres "$@"
}

# A login as the TLS-only role with full verification (CA + host name).
pg_tls_answers() {
  [[ -s $PG_TLS_CA_COPY ]] || return 1
  PGPASSWORD="$PG_TLS_PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -t -A \
    "host=$PG_HOST port=$PG_PORT dbname=$PG_APP_DB user=$PG_TLS_USER sslmode=verify-full sslrootcert=$PG_TLS_CA_COPY" \
    -c 'select 1' >/dev/null 2>&1
}

# True when DIR holds a server certificate that verifies against DIR/ca.pem,
# is not about to expire, matches its key, and the key is private to postgres.
pg_tls_installed_ok() {
  local dir=$1
  as_root test -s "$dir/ca.pem" -a -s "$dir/server.pem" -a -s "$dir/server-key.pem" || return 1
  as_root openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1 || return 1
  as_root openssl x509 -in "$dir/server.pem" -noout -checkend $((TLS_RENEW_DAYS * 86400)) >/dev/null 2>&1 || return 1
  [[ $(as_root openssl x509 -in "$dir/server.pem" -noout -pubkey) == \
    $(as_root openssl pkey -in "$dir/server-key.pem" -pubout 2>/dev/null) ]] || return 1
  [[ $(as_root stat -c '%U %a' "$dir/server-key.pem") == "postgres 600" ]]
}

# Makes the CA and server certificate in a scratch dir and installs them.
pg_tls_install() {
  local dir=$1 tmp
  tmp="$(mktemp -d)"
  tls_ensure_ca "$tmp" "session-fulfillment local PostgreSQL CA"
  tls_ensure_leaf "$tmp" server 127.0.0.1 server "IP:127.0.0.1,DNS:localhost"
  log "postgres: installing the server certificate and its CA in $dir"
  as_root install -d -o postgres -g postgres -m 0700 "$dir"
  as_root install -o postgres -g postgres -m 0600 "$tmp/server-key.pem" "$dir/server-key.pem"
  as_root install -o postgres -g postgres -m 0644 "$tmp/server.pem" "$dir/server.pem"
  as_root install -o postgres -g postgres -m 0644 "$tmp/ca.pem" "$dir/ca.pem"
  rm -rf "$tmp"
}

# pg_hba.conf is first match wins: our block goes at the top, so the
# generic "host all all ..." lines never see $PG_TLS_USER. Rewritten only
# when it differs (the previous version is kept as *.before-fulfillment-tls);
# the file keeps its owner and mode; a file the server
# would not accept (pg_hba_file_rules reports errors) is rolled back.
# Returns 0 when it changed the file, 1 when it was already right.
pg_hba_ensure() {
  local hba=$1 current want block
  block="$(
    cat <<HBA
$PG_HBA_BEGIN
hostssl  $PG_APP_DB  $PG_TLS_USER  127.0.0.1/32  scram-sha-256
hostssl  $PG_APP_DB  $PG_TLS_USER  ::1/128       scram-sha-256
host     all  $PG_TLS_USER  all  reject
local    all  $PG_TLS_USER  reject
$PG_HBA_END
HBA
  )"
  current="$(as_root cat "$hba")"
  want="$(
    printf '%s\n' "$current" | awk -v b="$PG_HBA_BEGIN" -v e="$PG_HBA_END" -v block="$block" '
      BEGIN { print block; print "" }
      $0 == b { skipping = 1; next }
      skipping { if ($0 == e) { skipping = 0; after = 1 }; next }
      after && $0 == "" { after = 0; next }
      { after = 0; print }
    '
  )"
  [[ $want == "$current" ]] && return 1
  log "postgres: $hba: $PG_TLS_USER only over TLS"
  as_root cp -p "$hba" "$hba.before-fulfillment-tls"
  printf '%s\n' "$want" | as_root tee "$hba.tmp" >/dev/null
  as_root chown --reference="$hba" "$hba.tmp"
  as_root chmod --reference="$hba" "$hba.tmp"
  as_root mv "$hba.tmp" "$hba"
  if [[ $(pg_sql -c 'SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL') != 0 ]]; then
    pg_sql -c 'SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL' >&2
    as_root mv "$hba.before-fulfillment-tls" "$hba"
    die "postgres: the edited $hba has errors; restored it"
  fi
  return 0
}

# Idempotent; every change is applied with a reload (PostgreSQL >= 10 reloads
# its TLS settings with the configuration), never a restart.
pg_ensure_tls() {
  require_openssl
  local conf_dir hba dir changed=0
  conf_dir="$(dirname "$(pg_sql -c 'SHOW config_file')")"
  hba="$(pg_sql -c 'SHOW hba_file')"
  dir="$conf_dir/fulfillment-tls"
  if ! pg_tls_installed_ok "$dir"; then
    pg_tls_install "$dir"
    changed=1
  fi
  mkdir -p "$(dirname "$PG_TLS_CA_COPY")"
  as_root cat "$dir/ca.pem" >"$PG_TLS_CA_COPY.tmp"
  mv "$PG_TLS_CA_COPY.tmp" "$PG_TLS_CA_COPY"

  # ALTER SYSTEM wins over postgresql.conf and its includes, whatever the
  # distribution put there (Debian: ssl = on with the snakeoil certificate).
  local name value
  for name in ssl ssl_cert_file ssl_key_file; do
    case $name in
      ssl) value=on ;;
      ssl_cert_file) value="$dir/server.pem" ;;
      ssl_key_file) value="$dir/server-key.pem" ;;
    esac
    if [[ $(pg_sql -c "SELECT setting FROM pg_file_settings WHERE name = '$name' AND applied") != "$value" ]]; then
      pg_sql -c "ALTER SYSTEM SET $name = '$value'"
      changed=1
    fi
  done

  pg_sql <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_TLS_USER') THEN
    CREATE ROLE $PG_TLS_USER;
  END IF;
END
\$\$;
ALTER ROLE $PG_TLS_USER WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$PG_TLS_PASSWORD';
GRANT CONNECT ON DATABASE $PG_APP_DB TO $PG_TLS_USER;
SQL

  pg_hba_ensure "$hba" && changed=1
  if ((changed)); then
    log "postgres: reloading the configuration (TLS, pg_hba.conf)"
    pg_sql -c 'SELECT pg_reload_conf()' >/dev/null
  fi
  local deadline=$((SECONDS + 10))
  until pg_tls_answers; do
    if ((SECONDS >= deadline)); then
      pg_print_log_tail
      die "postgres: $PG_TLS_USER cannot log in with sslmode=verify-full and $PG_TLS_CA_COPY"
    fi
    sleep 0.5
  done
  log "postgres: TLS login ok for $PG_TLS_USER (CA: $PG_TLS_CA_COPY)"
}

pg_up() {
  if pg_answers; then
    log "postgres: already running on $PG_HOST:$PG_PORT"
    pg_ensure_tls
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
  pg_ensure_tls
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
    if pg_tls_answers; then
      echo "postgres: TLS ok   postgresql://$PG_TLS_USER@$PG_HOST:$PG_PORT/$PG_APP_DB?sslmode=verify-full (CA $PG_TLS_CA_COPY)"
    else
      echo "postgres: no TLS   for $PG_TLS_USER (\`up\` sets it up)"
    fi
  else
    echo "postgres: stopped  postgresql://$PG_APP_USER@$PG_HOST:$PG_PORT/$PG_APP_DB"
    return 1
  fi
}
