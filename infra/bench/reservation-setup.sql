-- Tables shaped like inventory-svc's hot path, for pgbench (oms bench runs it).
CREATE TABLE bench_products (id integer PRIMARY KEY, available bigint NOT NULL CHECK (available >= 0), reserved bigint NOT NULL);
CREATE TABLE bench_inbox (consumer text NOT NULL, event_id uuid NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, event_id));
CREATE TABLE bench_reservations (order_id uuid PRIMARY KEY, state text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE, topic text NOT NULL, payload text NOT NULL, published_at timestamptz);
INSERT INTO bench_products SELECT g, 1000000000, 0 FROM generate_series(1, 1000) AS g;
