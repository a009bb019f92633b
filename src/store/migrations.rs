//! The schema's migrations, embedded by `build.rs` (see there why not by
//! `sqlx::migrate!`), and sqlx's `Migrator` over them.

use std::borrow::Cow;

use sqlx::SqlStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// A `Migrator` over one backend's list (`SQLITE` or `POSTGRES`).
pub fn migrator(files: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, description, sql)| {
                // As sqlx's own reading of a migrations folder decides it.
                let no_tx = sql.starts_with("-- no-transaction");
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    no_tx,
                )
            })
            .collect(),
    )
}

/// What a refusal to migrate means to the operator. sqlx's own words for a
/// database that holds a migration this build lacks ("previously applied but
/// is missing in the resolved migrations") read like a broken install; it is
/// an older build started on a database a newer one migrated (a rollback, an
/// old replica restarted mid-upgrade). Not run anyway: a newer schema may
/// have dropped what this build reads, and it would fail later, one query at
/// a time.
pub fn explain(error: MigrateError) -> anyhow::Error {
    match error {
        MigrateError::VersionMissing(version) => anyhow::anyhow!(
            "this database was migrated by a newer ghsync: its migration {version} is not in this build. \
             Run the build that migrated it, or a later one (ghsync does not migrate a database back)"
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        for (files, dir) in [(SQLITE, "sqlite"), (POSTGRES, "postgres")] {
            let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/").to_owned() + dir)
                .unwrap()
                .count();
            assert_eq!(files.len(), on_disk, "{dir}");
            assert!(files.windows(2).all(|w| w[0].0 < w[1].0), "{dir}: versions ascend");
            let migrator = migrator(files);
            assert_eq!(migrator.iter().count(), on_disk);
            // What `sqlx::migrate!` stored for databases it migrated: SHA-384 of the file's text.
            for (m, (_, _, sql)) in migrator.iter().zip(files) {
                assert_eq!(&*m.checksum, &sha2::Sha384::digest(sql.as_bytes())[..], "{dir} {}", m.version);
            }
        }
    }
}
