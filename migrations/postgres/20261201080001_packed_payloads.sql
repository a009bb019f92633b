-- SQLite's webhook committer stores payloads lz4-compressed in `packed`; the
-- claim reads both columns on either backend, so PostgreSQL has it too.
-- PostgreSQL's own writes keep the text in `payload`, which TOAST compresses.
ALTER TABLE webhook_payloads ADD COLUMN packed bytea;
