-- No index on `lease_id`: a claim and a settlement no longer add and remove an
-- entry in it. What looked rows up by lease now names them: a renewal lists
-- the GUIDs its worker claimed, a settlement joins on the GUID (`store/sql/inbox_round.rs`).
-- PostgreSQL drops it too, so that a claim is an update in place (its migration).
DROP INDEX webhook_deliveries_lease;
