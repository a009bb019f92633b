-- Payloads are stored lz4-compressed in `packed` (and '' in `payload`), by us
-- rather than by TOAST on the server: a quarter of the bytes on the socket,
-- and no compression in the server's CPU (`sql/packed.rs`). Rows written
-- before keep their text in `payload`.
ALTER TABLE webhook_payloads ADD COLUMN packed bytea;
