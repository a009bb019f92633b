-- A payload is written in the very statement that inserts its delivery, and
-- only for the rows that went in (`Backend::group_insert`), so the foreign key
-- guarded nothing our writes could break; its check, a query and a row lock
-- per payload, was ~6 % of the server's CPU under a burst of webhooks.
-- Pruning deletes a delivery's payload with it (`prune_deliveries`).
ALTER TABLE webhook_payloads DROP CONSTRAINT IF EXISTS webhook_payloads_delivery_id_fkey;
-- Payloads are lz4-packed by us (`sql/packed.rs`): the server need not try
-- to compress a large one again before keeping it out of line.
ALTER TABLE webhook_payloads ALTER COLUMN packed SET STORAGE EXTERNAL;
