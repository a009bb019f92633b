-- The processes that have this database open, with a heartbeat: opening it
-- takes back only the leases of processes that died (see store/processes.rs).
CREATE TABLE processes (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
