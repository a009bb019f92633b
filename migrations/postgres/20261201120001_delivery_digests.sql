-- A delivery's digest: its body cut down, at ingest, to the fields the inbox
-- worker reads (`read_body` in `webhook/event.rs`, ~190 bytes of JSON for a `star`). A
-- claim returns it with the row, so the worker neither reads the payload back
-- nor unpacks and parses ~7 KB of JSON again (~10 % of our CPU a delivery
-- under a burst of webhooks). NULL: the worker reads the payload (rows stored
-- before this, or a body whose fields have the wrong types).
ALTER TABLE webhook_deliveries ADD COLUMN digest TEXT;
