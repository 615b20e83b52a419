#!/usr/bin/env bash
# Writes the secrets docker-compose hands to the containers as files
# (/run/secrets/<name>), never as environment variables: the PostgreSQL
# superuser's and each service role's password, each service's database URL
# (which holds its password), the admin's first password, the key that
# seals token signing keys, and Grafana's admin password.
#
# They go into secrets/, readable by you only (the folder is 0700; the
# files are 0644 so that the containers' own users can read them once
# mounted). secrets/ and .env are in .dockerignore, so no image holds them.
# Refuses to overwrite existing secrets (they are in use).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -e secrets ]]; then
    echo "secrets/ exists already; remove it first to make new secrets" >&2
    exit 1
fi
random() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
mkdir -m 700 secrets
write() { printf '%s\n' "$2" > "secrets/$1"; chmod 644 "secrets/$1"; }
write postgres-password "$(random)"
for service in order inventory customer; do
    password=$(random)
    write "$service-db-password" "$password"
    write "$service-database-url" "postgres://oms_$service:$password@postgres:5432/oms_$service"
done
write admin-password "$(random)"
write key-encryption-key "$(head -c 32 /dev/urandom | base64)"
write grafana-admin-password "$(random)"
echo "wrote secrets/; the admin's first password is in secrets/admin-password" >&2
