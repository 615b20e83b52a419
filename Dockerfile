# One image with the three services and the oms command; docker-compose.yml
# and the Kubernetes manifests (deploy/k8s) pick the binary per container.
#
#   docker build -t oms:local .
#
# Dependencies build in a layer of their own (cargo-chef, from crates.io),
# keyed by Cargo.toml and Cargo.lock only: a change to our code rebuilds
# our crates, not the ~460 others. The runtime image is Debian slim with
# the binaries, and runs as the numeric user 10001, so that Kubernetes'
# runAsNonRoot can check it without a runAsUser.
FROM rust:1.95-bookworm AS chef
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
    -p order-svc -p inventory-svc -p customer-svc -p oms
COPY . .
RUN cargo build --release --locked -p order-svc -p inventory-svc -p customer-svc -p oms \
 && mkdir /out \
 && cp target/release/order-svc target/release/inventory-svc target/release/customer-svc target/release/oms /out/

FROM debian:bookworm-slim
# curl: docker-compose's health checks (Kubernetes probes need nothing).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl libssl3 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 oms \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin oms
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
# On PostgreSQL nothing is written at run time, so the root filesystem can
# be read-only; SQLite (oms up, dev mode) needs a writable OMS_DATA_DIR.
ENV OMS_LOG_FORMAT=json
