#!/usr/bin/env bash
# Runs the whole test suite against a real Apache Kafka and PostgreSQL.
#
#   scripts/test.sh [extra cargo test arguments]
#
# First run on a fresh machine: installs PostgreSQL 15 and Prometheus (with promtool) from
# Debian's packages if missing (about a minute), fetches the Kafka jars into ~/.cache/oms with
# Maven (under a minute), and compiles the workspace (about 6 minutes on two
# cores). Later runs reuse all three.
#
# OMS_KAFKA_BOOTSTRAP and OMS_DATABASE_URL (an admin URL) point the suite at a
# broker and a server that already run instead.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "test.sh: '$1' is missing: $2" >&2; exit 1; }
}
need cargo "install Rust (rustup)"
need java "apt-get install openjdk-17-jre-headless"
need mvn "apt-get install maven"

if [ -z "${OMS_DATABASE_URL:-}" ]; then
  bash scripts/postgres.sh
  export OMS_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres
fi

# The monitoring test scrapes the services with a real Prometheus and checks
# the alerting rules with promtool; Debian's package has both.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "test.sh: installing Prometheus from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends prometheus >/dev/null; }
fi
need prometheus "apt-get install prometheus"
need promtool "apt-get install prometheus"

if [ -z "${OMS_KAFKA_BOOTSTRAP:-}" ]; then
  cargo build --quiet --locked -p local-kafka --bin oms-local-kafka
  kafka_dir=$(mktemp -d -t oms-test-kafka.XXXXXX)
  # One broker for every test binary; it stops when this script exits.
  OMS_KAFKA_BOOTSTRAP=$(cargo run --quiet --locked -p local-kafka --bin oms-local-kafka -- \
    --data-dir "$kafka_dir" --watch-pid $$ --ephemeral)
  export OMS_KAFKA_BOOTSTRAP
  echo "test.sh: Kafka at $OMS_KAFKA_BOOTSTRAP, PostgreSQL at 127.0.0.1:5432" >&2
fi

# The chaos suite starts the services as processes of their own, from the
# binaries beside its test binary. cargo test builds a package's binaries
# only for that package's own integration tests (order-svc has none since
# the system tests moved out), so build every binary, fresh, first.
cargo build --quiet --workspace --all-features --locked --bins

cargo test --workspace --all-features --locked "$@"
