#!/usr/bin/env bash
# What deploy/k8s/overlays/dev needs besides its manifests, put into the
# namespace `oms` of the cluster kubectl points at (idempotent):
#
# - the Secrets, from the files in secrets/ that scripts/compose-secrets.sh
#   writes (run here if secrets/ is missing), so that compose and the dev
#   cluster share one set:
#     order-svc-secrets       database-url
#     inventory-svc-secrets   database-url
#     customer-svc-secrets    database-url, admin-password, key-encryption-key
#     postgres-secrets        postgres-password, <service>-db-password
# - the ConfigMap postgres-init: infra/postgres/init.sh, which makes a
#   database and a role per service at PostgreSQL's first start.
#
# Secret values travel from the files to the cluster through a pipe, never
# as command-line arguments.
#
#   scripts/k8s-dev-setup.sh
#   kubectl apply -k deploy/k8s/overlays/dev
set -euo pipefail
cd "$(dirname "$0")/.."

namespace=oms
[[ -d secrets ]] || bash scripts/compose-secrets.sh

apply() { kubectl apply -f -; }
kubectl create namespace "$namespace" --dry-run=client -o yaml | apply
secret() {
    local name=$1
    shift
    kubectl create secret generic "$name" --namespace "$namespace" "$@" --dry-run=client -o yaml | apply
}
secret order-svc-secrets --from-file=database-url=secrets/order-database-url
secret inventory-svc-secrets --from-file=database-url=secrets/inventory-database-url
secret customer-svc-secrets \
    --from-file=database-url=secrets/customer-database-url \
    --from-file=admin-password=secrets/admin-password \
    --from-file=key-encryption-key=secrets/key-encryption-key
secret postgres-secrets \
    --from-file=secrets/postgres-password \
    --from-file=secrets/order-db-password \
    --from-file=secrets/inventory-db-password \
    --from-file=secrets/customer-db-password
kubectl create configmap postgres-init --namespace "$namespace" \
    --from-file=init.sh=infra/postgres/init.sh --dry-run=client -o yaml | apply
echo "namespace $namespace is ready for: kubectl apply -k deploy/k8s/overlays/dev" >&2
