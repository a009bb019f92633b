-- Users an admin disconnected (DELETE /api/users/{id}). A pass that re-lists
-- their still-active installation must not bring them back; a new
-- installation, or tracking them again, does.
CREATE TABLE erased_users (
    github_id BIGINT PRIMARY KEY,
    erased_at TEXT NOT NULL
);
