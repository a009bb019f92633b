-- The inbox's claim must walk `webhook_deliveries_pending` in `next_attempt_at`
-- order. With every delivery also in `webhook_deliveries_state`, SQLite's
-- planner (no statistics) chose that index for `state = 'pending'` and sorted
-- the whole backlog for each claim of 128: 4 ms a claim at a backlog of
-- 10,000, 16 ms at 70,000, and growing with it. The other states get an index
-- each for the query that asks about them, partial on the exact terms those
-- queries use (SQLite uses a partial index only then): parked deliveries, newest
-- first; finished ones, by when they finished, for pruning. A delivery coming
-- in (pending) now writes one index fewer.
DROP INDEX webhook_deliveries_state;
CREATE INDEX webhook_deliveries_parked ON webhook_deliveries (received_at) WHERE state = 'failed';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (completed_at) WHERE state IN ('done', 'ignored');
