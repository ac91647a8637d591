//! Fingerprint the migrations so PostgreSQL tests can reuse one migrated template database
//! until a migration changes.

use std::{
    collections::hash_map::DefaultHasher,
    fs,
    hash::{Hash, Hasher},
    path::Path,
};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migration/src");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> =
        fs::read_dir(&dir).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        if let Ok(text) = fs::read_to_string(&file) {
            file.file_name().hash(&mut hasher);
            text.hash(&mut hasher);
        }
    }
    println!("cargo:rustc-env=RAPPORT_MIGRATIONS_FINGERPRINT={:016x}", hasher.finish());
}
