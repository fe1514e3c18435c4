#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the outcome tests and print the URL to export:
#   eval "$(.ci/postgres.sh)"   # sets RISKMAP_TEST_DATABASE_URL
# Idempotent: installs Debian's postgresql if missing (root + apt), reuses a running cluster.
set -euo pipefail
PGROOT="${RISKMAP_PG_DIR:-/tmp/riskmap-pg}"
PORT="${RISKMAP_PG_PORT:-54329}"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 || true
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [ -z "$bindir" ]; then
  echo "echo 'ci: postgresql not available; PostgreSQL tests will skip' >&2"
  exit 0
fi
run() {  # PostgreSQL refuses to run as root: use the postgres account when we are root.
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
mkdir -p "$PGROOT"
[ "$(id -u)" = "0" ] && chown postgres "$PGROOT"
if [ ! -f "$PGROOT/data/PG_VERSION" ]; then
  run "$bindir/initdb" -D "$PGROOT/data" -U riskmap --auth=trust -E UTF8 >/dev/null
fi
if ! run "$bindir/pg_ctl" -D "$PGROOT/data" status >/dev/null 2>&1; then
  run "$bindir/pg_ctl" -D "$PGROOT/data" -w -l "$PGROOT/log" \
    -o "-p $PORT -k $PGROOT -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
fi
run "$bindir/psql" -h 127.0.0.1 -p "$PORT" -U riskmap -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname='riskmap_test'" | grep -q 1 \
  || run "$bindir/createdb" -h 127.0.0.1 -p "$PORT" -U riskmap riskmap_test
echo "export RISKMAP_TEST_DATABASE_URL=postgresql+psycopg://riskmap@127.0.0.1:$PORT/riskmap_test"
