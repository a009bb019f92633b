-- Payloads are stored lz4-compressed in `packed` (and '' in `payload`): ~2 KB
-- instead of ~7 KB of JSON, so a payload fits in a page instead of spilling
-- over three, and a group's WAL is a quarter of the size (`sql/packed.rs`).
-- Rows written before keep their text in `payload`.
ALTER TABLE webhook_payloads ADD COLUMN packed BLOB;
