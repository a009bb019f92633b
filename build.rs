//! Embeds the migrations: writes `$OUT_DIR/migrations.rs`, one list per
//! backend of (version, description, SQL) with each file's text pulled in by
//! `include_str!`. This is what `sqlx::migrate!` generates, without sqlx's
//! `macros` feature: that feature builds sqlx's drivers (and SQLite's C source,
//! and rustls) a second time for the compiler, about two minutes of CPU in a
//! cold build, for this one macro. File names follow sqlx's rule,
//! `<VERSION>_<DESCRIPTION>.sql`, and the checksum sqlx keeps is computed from
//! the same text at run time, so databases migrated by the macro match.
use std::fmt::Write as _;
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut out = String::new();
    for (backend, name) in [("sqlite", "SQLITE"), ("postgres", "POSTGRES")] {
        let dir = root.join(backend);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable migrations directory").path())
            .collect();
        files.sort();
        writeln!(out, "/// `migrations/{backend}`, oldest first.").unwrap();
        writeln!(out, "pub const {name}: &[(i64, &str, &str)] = &[").unwrap();
        for path in files {
            let file = path.file_name().unwrap().to_str().expect("a UTF-8 migration file name");
            let (version, rest) =
                file.split_once('_').unwrap_or_else(|| panic!("{file}: not <VERSION>_<DESCRIPTION>.sql"));
            let description = rest.strip_suffix(".sql").unwrap_or_else(|| panic!("{file}: not a .sql file"));
            assert!(
                !description.ends_with(".up") && !description.ends_with(".down"),
                "{file}: reversible migrations are not used"
            );
            let version: i64 = version.parse().unwrap_or_else(|_| panic!("{file}: the version is not a number"));
            writeln!(
                out,
                "    ({version}, {:?}, include_str!({:?})),",
                description.replace('_', " "),
                path.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs"), out).unwrap();
}
