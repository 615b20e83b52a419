#!/usr/bin/env bash
# Makes sure a local PostgreSQL 15 accepts connections on 127.0.0.1:5432 as
# postgres/postgres: installs it from Debian's packages when it is missing,
# creates and starts the cluster, and sets the password. Idempotent.
#
#   scripts/postgres.sh          # ensure it runs
#
# Needs root (apt-get, pg_ctlcluster). Prints nothing but errors on success.
set -euo pipefail

PG_VERSION=${PG_VERSION:-15}
PASSWORD=${OMS_PG_PASSWORD:-postgres}

say() { printf 'postgres.sh: %s\n' "$*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ]; then
  say "PostgreSQL $PG_VERSION is not installed; installing it with apt-get (about a minute)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "postgresql-$PG_VERSION" >/dev/null
fi

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PG_VERSION main"; then
  say "creating cluster $PG_VERSION/main"
  pg_createcluster "$PG_VERSION" main >/dev/null
fi

if ! pg_lsclusters -h | awk -v v="$PG_VERSION" '$1==v && $2=="main" {print $4}' | grep -qx online; then
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
fi

for _ in $(seq 1 30); do
  if su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done

su postgres -c "psql -qtAc \"ALTER USER postgres PASSWORD '$PASSWORD'\"" >/dev/null
# Many test databases are created in parallel; the default of 100 is tight.
current=$(su postgres -c "psql -qtAc 'show max_connections'")
if [ "$current" -lt 300 ]; then
  su postgres -c "psql -qtAc 'ALTER SYSTEM SET max_connections = 300'" >/dev/null
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main restart
fi

if ! PGPASSWORD=$PASSWORD psql -h 127.0.0.1 -U postgres -qtAc 'select 1' postgres >/dev/null 2>&1; then
  say "PostgreSQL does not accept postgres/$PASSWORD on 127.0.0.1:5432"
  exit 1
fi
