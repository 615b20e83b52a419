#!/usr/bin/env bash
# Writes .env for docker-compose with fresh random secrets, readable by you
# only: the PostgreSQL superuser's and each service role's password, the
# admin's first password, and the key that seals token signing keys.
# Refuses to overwrite an existing .env (its secrets are in use).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -e .env ]]; then
    echo ".env exists already; remove it first to make new secrets" >&2
    exit 1
fi
random() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
umask 077
{
    echo "OMS_POSTGRES_PASSWORD=$(random)"
    echo "OMS_ORDER_DB_PASSWORD=$(random)"
    echo "OMS_INVENTORY_DB_PASSWORD=$(random)"
    echo "OMS_CUSTOMER_DB_PASSWORD=$(random)"
    echo "OMS_ADMIN_PASSWORD=$(random)"
    echo "OMS_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)"
    echo "OMS_GRAFANA_ADMIN_PASSWORD=$(random)"
} > .env
echo "wrote .env; the admin's first password is its OMS_ADMIN_PASSWORD" >&2
