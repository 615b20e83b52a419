-- One stock reservation, as inventory-svc applies an OrderPlaced: the
-- inbox record, the conditional stock update, the reservation, and the
-- StockReserved event in the outbox, in one transaction.
\set product random(1, 1000)
BEGIN;
INSERT INTO bench_inbox (consumer, event_id) VALUES ('saga', gen_random_uuid());
UPDATE bench_products SET available = available - 1, reserved = reserved + 1 WHERE id = :product AND available >= 1;
INSERT INTO bench_reservations (order_id, state) VALUES (gen_random_uuid(), 'RESERVED');
INSERT INTO bench_outbox (event_id, topic, payload) VALUES (gen_random_uuid(), 'inventory', repeat('x', 600));
COMMIT;
