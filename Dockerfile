# One image with the three services and the oms command; docker-compose.yml
# picks the binary per container.
#
#   docker build -t oms .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p order-svc -p inventory-svc -p customer-svc -p oms \
 && mkdir /out \
 && cp target/release/order-svc target/release/inventory-svc target/release/customer-svc target/release/oms /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl libssl3 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 oms
COPY --from=build /out/ /usr/local/bin/
USER oms
ENV OMS_LOG_FORMAT=json
