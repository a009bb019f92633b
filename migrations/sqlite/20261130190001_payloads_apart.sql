-- A delivery's payload (~7 KB, up to 25 MB) lives apart from its row. On SQLite
-- a row is one record: every claim and settlement rewrote the payload with it,
-- and reading `state` or `lease_until`, stored after it, walked its overflow
-- pages (half the writer's time under a burst). Rows are now small; a payload
-- is written once and read once. Deleting a delivery deletes its payload.
CREATE TABLE webhook_payloads (
    delivery_id TEXT PRIMARY KEY REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE,
    payload     TEXT NOT NULL
);
INSERT INTO webhook_payloads (delivery_id, payload) SELECT delivery_id, payload FROM webhook_deliveries;
ALTER TABLE webhook_deliveries DROP COLUMN payload;
