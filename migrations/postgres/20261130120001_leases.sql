-- Claims carry a token (a random id per claim) on the rows they lease. Every
-- write that settles a claimed row names it, so a process whose lease ran
-- out and was claimed by another changes nothing (fencing); renewals find
-- their rows by it. Cleared when the row is settled.
ALTER TABLE users ADD COLUMN lease_id TEXT;
CREATE INDEX users_lease ON users (lease_id) WHERE lease_id IS NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN lease_id TEXT;
CREATE INDEX webhook_deliveries_lease ON webhook_deliveries (lease_id) WHERE lease_id IS NOT NULL;
-- The process carrying a pass out; `heartbeat_at` is its heartbeat alone. A
-- pass whose owner fell silent is taken over by another process (compare-and-set
-- on this column) and finished by it.
ALTER TABLE sync_runs ADD COLUMN owner TEXT;
