-- A user's whole REST object (~2.5 KB) lives apart from the user's row, as a
-- delivery's payload does. On SQLite a row is one record: every claim and every
-- "unchanged" outcome rewrote the profile with it, and reading `status`,
-- `claimed_until` or `lease_id`, stored after it, walked its overflow pages.
-- The reconciler touches each user's row twice a pass and the profile only when
-- it changed. Deleting a user (erasure) deletes the profile.
CREATE TABLE user_profiles (
    github_id      BIGINT PRIMARY KEY REFERENCES users (github_id) ON DELETE CASCADE,
    github_profile TEXT NOT NULL
);
INSERT INTO user_profiles (github_id, github_profile)
    SELECT github_id, github_profile FROM users WHERE github_profile IS NOT NULL;
ALTER TABLE users DROP COLUMN github_profile;
