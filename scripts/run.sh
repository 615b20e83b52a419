#!/usr/bin/env bash
# Runs the whole system on this machine: `oms up` (a single-node Apache
# Kafka and the three services, each on its own SQLite database under
# ./data). Ctrl-C stops everything. Arguments go to `oms up` (see --help):
#
#   scripts/run.sh            # ports 8080-8082, Kafka on 9092
#   scripts/run.sh --demo     # with demo products and customers
#
# First run: fetches the Kafka jars into ~/.cache/oms (under a minute) and
# compiles in release mode (about 6 minutes on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null 2>&1 || { echo "run.sh: 'cargo' is missing: install Rust (rustup)" >&2; exit 1; }
exec cargo run --release --locked -p oms -- up "$@"
