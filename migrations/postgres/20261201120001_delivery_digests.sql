-- A delivery's digest: its body cut down, at ingest, to the fields the inbox
-- worker reads (`webhook::read_body`, ~200 bytes of JSON). A claim returns it
-- with the row, so the worker neither reads the payload back nor parses ~7 KB
-- of JSON again: under a burst of webhooks that read was ~15 % of the
-- database server's time and of ours. NULL: the worker reads the payload (rows
-- stored before this, or a body whose fields have the wrong types).
ALTER TABLE webhook_deliveries ADD COLUMN digest TEXT;
