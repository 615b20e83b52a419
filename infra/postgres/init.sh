#!/bin/sh
# docker-compose only: one database per service, each owned by its own
# login role, so that a service's credentials open its own database and
# nothing else (not the superuser's). The passwords are compose secrets,
# files under /run/secrets (see scripts/compose-secrets.sh); psql quotes them.
set -eu
for service in order inventory customer; do
    file="/run/secrets/$service-db-password"
    password=$(cat "$file") || {
        echo "$file is missing: run scripts/compose-secrets.sh" >&2
        exit 1
    }
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="oms_$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"role" TO :"role";
SQL
done
