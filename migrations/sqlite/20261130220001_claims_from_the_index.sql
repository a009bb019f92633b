-- A claim walks one of these indexes in order and skips users another batch
-- holds (`claimed_until`): with `claimed_until` in the index, a skip reads no
-- table row (on SQLite, a row's later columns sit past the stored profile, in
-- its overflow pages). `users_next_sync` now holds only explicit times: with
-- every NULL in it, the planner used it for `next_sync_at IS NULL` and read
-- every synced user's row for each claim by age (40 ms a claim at 20,000 users).
DROP INDEX users_stale;
CREATE INDEX users_stale ON users (last_synced_at, claimed_until) WHERE status = 'active' AND sync_enabled AND next_sync_at IS NULL;
DROP INDEX users_next_sync;
CREATE INDEX users_next_sync ON users (next_sync_at, claimed_until) WHERE status = 'active' AND sync_enabled AND next_sync_at IS NOT NULL;
DROP INDEX users_due;
CREATE INDEX users_due ON users (due_at, claimed_until) WHERE due_at IS NOT NULL;
