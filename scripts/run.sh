#!/usr/bin/env bash
# Runs the whole system on this machine: a single-node Apache Kafka and the
# three services, each on its own SQLite database under ./data (no database
# server needed). Ctrl-C stops everything.
#
#   scripts/run.sh
#
# First run: fetches the Kafka jars into ~/.cache/oms (under a minute) and
# compiles the services in release mode (about 6 minutes on two cores).
# Data (broker log, databases) survives restarts in ./data.
#
# OMS_KAFKA_BOOTSTRAP=host:port uses an existing cluster instead of starting
# one; every OMS_* variable of the services applies (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "run.sh: '$1' is missing: $2" >&2; exit 1; }
}
need cargo "install Rust (rustup)"

export OMS_DATA_DIR=${OMS_DATA_DIR:-$PWD/data}
mkdir -p "$OMS_DATA_DIR"
cargo build --release --locked -p order-svc -p inventory-svc -p customer-svc -p testkit --bins
bin=${CARGO_TARGET_DIR:-target}/release

if [ -z "${OMS_KAFKA_BOOTSTRAP:-}" ]; then
  need java "apt-get install openjdk-17-jre-headless"
  need mvn "apt-get install maven"
  OMS_KAFKA_BOOTSTRAP=$("$bin/oms-local-kafka" --data-dir "$OMS_DATA_DIR/kafka" \
    --port "${OMS_KAFKA_PORT:-9092}" --watch-pid $$)
  export OMS_KAFKA_BOOTSTRAP
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo "run.sh: stopping" >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

for svc in inventory-svc customer-svc order-svc; do
  "$bin/$svc" &
  pids+=($!)
done

cat <<INFO

  Kafka          $OMS_KAFKA_BOOTSTRAP
  order-svc      http://${OMS_ORDER_HTTP_ADDR:-127.0.0.1:8080}      docs: /docs
  inventory-svc  http://${OMS_INVENTORY_HTTP_ADDR:-127.0.0.1:8081}  docs: /docs
  customer-svc   http://${OMS_CUSTOMER_HTTP_ADDR:-127.0.0.1:8082}   docs: /docs
  data           $OMS_DATA_DIR

  Ctrl-C stops everything.
INFO
wait -n "${pids[@]}"
