-- Replicas book points from one budget row (`domain::book`): the per-minute
-- secondary limit is counted across processes in `minute_start`/`minute_used`.
ALTER TABLE rate_limits ADD COLUMN minute_start TEXT;
ALTER TABLE rate_limits ADD COLUMN minute_used BIGINT NOT NULL DEFAULT 0;
