#!/usr/bin/env bash
# Makes a PostgreSQL server ready for twopc's tests, on this machine or a clean one:
#
#   1. installs PostgreSQL with apt-get when its binaries are missing;
#   2. sets max_prepared_transactions (0 by default, which disables PREPARE TRANSACTION)
#      in a conf.d file of the cluster;
#   3. starts the cluster, or restarts it when the setting was not yet live (it needs a restart);
#   4. creates a SUPERUSER role named after the user running the tests (root in CI), so
#      they connect over the unix socket with peer authentication: no password anywhere.
#
# Tests find the server through TWOPC_TEST_PG_URL, default
#   postgresql://root@localhost/postgres?host=/var/run/postgresql
# They create their own databases (unique names) and drop them afterwards.
#
# Run it as root: sudo scripts/ci-postgres.sh   (idempotent; prints the URL, and only that, on stdout)
set -euo pipefail

PG_MAJOR="${TWOPC_PG_MAJOR:-15}"
PG_CLUSTER="${TWOPC_PG_CLUSTER:-main}"
PREPARED_XACTS_MAX=100
CONNECTIONS_MAX=200
READY_WAIT_S=60
SOCKET_DIR=/var/run/postgresql
ROLE="${TWOPC_PG_ROLE:-${SUDO_USER:-$(id -un)}}"

# Narration goes to stderr: stdout is the URL alone, for `TWOPC_TEST_PG_URL=$(scripts/ci-postgres.sh)`.
say() { echo "ci-postgres: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  say "run this as root (it installs packages and manages the cluster)"
  exit 1
fi

if ! command -v pg_ctlcluster >/dev/null || [ ! -x "/usr/lib/postgresql/${PG_MAJOR}/bin/postgres" ]; then
  say "PostgreSQL ${PG_MAJOR} is not installed; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  # The distribution's default version when ${PG_MAJOR} is not packaged for it.
  apt-get install -y -q "postgresql-${PG_MAJOR}" >&2 || apt-get install -y -q postgresql >&2
  PG_MAJOR="$(ls /usr/lib/postgresql | sort -n | tail -1)"
fi

if ! pg_lsclusters -h | awk -v v="$PG_MAJOR" -v c="$PG_CLUSTER" '$1==v && $2==c {found=1} END {exit !found}'; then
  say "creating cluster ${PG_MAJOR}/${PG_CLUSTER}"
  pg_createcluster "$PG_MAJOR" "$PG_CLUSTER" >&2
fi

conf_dir="/etc/postgresql/${PG_MAJOR}/${PG_CLUSTER}/conf.d"
mkdir -p "$conf_dir"
cat >"${conf_dir}/twopc.conf" <<EOF
# Written by twopc's scripts/ci-postgres.sh: two-phase commit needs prepared transactions.
max_prepared_transactions = ${PREPARED_XACTS_MAX}
max_connections = ${CONNECTIONS_MAX}
EOF
chown postgres:postgres "${conf_dir}/twopc.conf"

psql_postgres() {
  runuser -u postgres -- psql --no-psqlrc -X -q -t -A -h "$SOCKET_DIR" -p "$port" -d postgres "$@"
}

port="$(pg_conftool -s "$PG_MAJOR" "$PG_CLUSTER" show port 2>/dev/null || echo 5432)"
status="$(pg_lsclusters -h | awk -v v="$PG_MAJOR" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}')"
if [ "$status" = "online" ]; then
  live="$(psql_postgres -c 'SHOW max_prepared_transactions')"
  if [ "$live" -lt "$PREPARED_XACTS_MAX" ]; then
    say "restarting ${PG_MAJOR}/${PG_CLUSTER}: max_prepared_transactions is ${live}, needs ${PREPARED_XACTS_MAX}"
    pg_ctlcluster "$PG_MAJOR" "$PG_CLUSTER" restart >&2
  fi
else
  say "starting ${PG_MAJOR}/${PG_CLUSTER}"
  pg_ctlcluster "$PG_MAJOR" "$PG_CLUSTER" start >&2
fi

for _ in $(seq 1 "$READY_WAIT_S"); do
  if runuser -u postgres -- pg_isready -q -h "$SOCKET_DIR" -p "$port"; then break; fi
  sleep 1
done
if ! runuser -u postgres -- pg_isready -q -h "$SOCKET_DIR" -p "$port"; then
  say "the server did not accept connections within ${READY_WAIT_S} s; see /var/log/postgresql/postgresql-${PG_MAJOR}-${PG_CLUSTER}.log"
  exit 1
fi

if [ "$ROLE" != "postgres" ]; then
  # psql interpolates :'role' only in scripts read from stdin, not in -c commands.
  exists="$(echo "SELECT 1 FROM pg_roles WHERE rolname = :'role'" | psql_postgres -v role="$ROLE")"
  if [ "$exists" != "1" ]; then
    say "creating role ${ROLE} (SUPERUSER, peer authentication over ${SOCKET_DIR})"
    echo 'CREATE ROLE :"role" LOGIN SUPERUSER CREATEDB' | psql_postgres -v role="$ROLE" >&2
  fi
fi

live="$(psql_postgres -c 'SHOW max_prepared_transactions')"
say "PostgreSQL ${PG_MAJOR}/${PG_CLUSTER} ready on port ${port}, max_prepared_transactions=${live}"
echo "postgresql://${ROLE}@localhost:${port}/postgres?host=${SOCKET_DIR}"
