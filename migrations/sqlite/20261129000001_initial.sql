-- ghsync schema, SQLite flavour. Timestamps are RFC 3339 text in UTC (sqlx's
-- chrono encoding), which sorts correctly as text.

CREATE TABLE installations (
    id            BIGINT PRIMARY KEY,
    account_id    BIGINT,
    account_login TEXT,
    account_type  TEXT,
    state         TEXT NOT NULL,
    -- When GitHub last showed it to us (webhook or listing): a pass retires the unseen.
    seen_at       TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE users (
    github_id         BIGINT PRIMARY KEY,
    node_id           TEXT,
    login             TEXT NOT NULL,
    name              TEXT,
    avatar_url        TEXT,
    bio               TEXT,
    company           TEXT,
    blog              TEXT,
    location          TEXT,
    email             TEXT,
    twitter_username  TEXT,
    public_repos      BIGINT,
    public_gists      BIGINT,
    followers         BIGINT,
    following         BIGINT,
    github_created_at TEXT,
    github_updated_at TEXT,
    github_profile    TEXT,
    profile_hash      TEXT,
    observed_hash     TEXT,
    status            TEXT NOT NULL,
    sync_enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    installation_id   BIGINT,
    last_synced_at    TEXT,
    due_at            TEXT,
    next_sync_at      TEXT,
    claimed_until     TEXT,
    failures          INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX users_login ON users (lower(login));
CREATE INDEX users_installation ON users (installation_id);
-- The reconciler's queue: who is next, in order (stalest first, failures backed off).
CREATE INDEX users_next_sync ON users (next_sync_at) WHERE status = 'active' AND sync_enabled;
-- Users a webhook or an admin asked to refresh now.
CREATE INDEX users_due ON users (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE webhook_deliveries (
    delivery_id     TEXT PRIMARY KEY,
    event           TEXT NOT NULL,
    action          TEXT,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    received_at     TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    completed_at    TEXT,
    last_error      TEXT
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_state ON webhook_deliveries (state);

CREATE TABLE sync_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger         TEXT NOT NULL,
    state           TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    heartbeat_at    TEXT NOT NULL,
    users_due       BIGINT NOT NULL DEFAULT 0,
    fetched         BIGINT NOT NULL DEFAULT 0,
    changed         BIGINT NOT NULL DEFAULT 0,
    unchanged       BIGINT NOT NULL DEFAULT 0,
    failed          BIGINT NOT NULL DEFAULT 0,
    gone            BIGINT NOT NULL DEFAULT 0,
    points_core     BIGINT NOT NULL DEFAULT 0,
    points_graphql  BIGINT NOT NULL DEFAULT 0,
    installations_added   BIGINT NOT NULL DEFAULT 0,
    installations_removed BIGINT NOT NULL DEFAULT 0
);
-- At most one pass runs at a time, across every process on this database.
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (state) WHERE state = 'running';

CREATE TABLE sync_run_messages (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    at      TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX sync_run_messages_run ON sync_run_messages (run_id);

CREATE TABLE rate_limits (
    installation_id BIGINT NOT NULL,
    resource        TEXT NOT NULL,
    "limit"         BIGINT NOT NULL,
    remaining       BIGINT NOT NULL,
    reset_at        TEXT NOT NULL,
    paused_until    TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (installation_id, resource)
);
