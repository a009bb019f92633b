-- A user is due when last synced longer ago than GHSYNC_STALE_AFTER says now,
-- not at a time fixed when it was synced: lowering the setting applies at once.
-- `next_sync_at` is now only an explicit time: a failure's backoff or a mark
-- (webhook, admin, registration); NULL once synced, when age alone decides.
UPDATE users SET next_sync_at = NULL WHERE failures = 0 AND due_at IS NULL AND last_synced_at IS NOT NULL;
-- The pass's queue by age, stalest (and never synced) first.
CREATE INDEX users_stale ON users (last_synced_at) WHERE status = 'active' AND sync_enabled AND next_sync_at IS NULL;
-- Users last synced at or before this are due in the pass: its start less
-- GHSYNC_STALE_AFTER, or its start for `--all`. Joiners use the same.
ALTER TABLE sync_runs ADD COLUMN synced_before TIMESTAMPTZ;
