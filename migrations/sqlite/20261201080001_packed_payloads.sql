-- The request path's committer stores a payload lz4-compressed in `packed`
-- (and '' in `payload`): ~2 KB instead of ~7 KB of JSON, so a payload fits in
-- a page instead of spilling over three, and a group's WAL is a quarter of
-- the size. Rows written before (and by `insert_deliveries`) keep their text.
ALTER TABLE webhook_payloads ADD COLUMN packed BLOB;
