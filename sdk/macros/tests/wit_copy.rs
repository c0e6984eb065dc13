//! `wit/` in this crate is a copy of the repository's top-level `wit/`, the one source of truth for the
//! contract: the same `.wit` files, byte for byte (`wit/versions/` is not copied). Run
//! `scripts/sync-sdk-wit.sh` after changing the WIT.
//!
//! This test needs the repository around the crate, so it is left out of the published package (see
//! `include` in Cargo.toml).

use std::collections::BTreeMap;
use std::path::Path;

/// The `.wit` files directly in `dir`, by name.
fn wit_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()));
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
            .path();
        if path.extension().is_some_and(|e| e == "wit") && path.is_file() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read(&path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            files.insert(name, text);
        }
    }
    files
}

#[test]
fn the_crates_wit_is_the_repositorys() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repository = wit_files(&crate_dir.join("../../wit"));
    let copy = wit_files(&crate_dir.join("wit"));
    assert!(
        !repository.is_empty(),
        "no .wit files in the repository's wit/"
    );
    let names = |files: &BTreeMap<String, Vec<u8>>| files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&copy),
        names(&repository),
        "sdk/macros/wit/ and wit/ hold different files: run scripts/sync-sdk-wit.sh"
    );
    for (name, text) in &repository {
        assert!(
            copy.get(name) == Some(text),
            "sdk/macros/wit/{name} differs from wit/{name}: run scripts/sync-sdk-wit.sh"
        );
    }
}
