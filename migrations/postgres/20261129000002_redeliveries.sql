-- The missed-delivery sweep's memory: how often we asked GitHub to redeliver
-- each GUID (at most 3 times in all), and how far back the last sweep looked.
CREATE TABLE redelivery_requests (
    guid              TEXT PRIMARY KEY,
    requests          INTEGER NOT NULL,
    last_requested_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sweep_marks (
    name       TEXT PRIMARY KEY,
    value      BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
