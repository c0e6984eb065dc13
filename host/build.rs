//! Embeds the web pages: every file under `web/` becomes an entry of a table in `$OUT_DIR/web_assets.rs`
//! (its path, its bytes through `include_bytes!`, and an ETag from a hash of its bytes), which
//! `src/web/assets.rs` includes. Adding, changing or removing a file under `web/` rebuilds the table; no
//! Rust changes with it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("web");
    println!("cargo:rerun-if-changed={}", web.display());
    println!("cargo:rerun-if-changed=src/web/hash.rs");
    let mut files = Vec::new();
    collect(&web, &mut files);
    files.sort();
    let mut table = String::from(
        "/// Every file under `host/web/`, by its path there (`/`-separated), sorted.\n\
         pub static EMBEDDED: &[Embedded] = &[\n",
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let bytes = std::fs::read(file).expect("read a file of web/");
        let relative = file
            .strip_prefix(&web)
            .expect("under web/")
            .components()
            .map(|c| c.as_os_str().to_str().expect("web/ file names are UTF-8"))
            .collect::<Vec<_>>()
            .join("/");
        let _ = writeln!(
            table,
            "    Embedded {{ path: {relative:?}, bytes: include_bytes!({:?}), etag: \"\\\"{:016x}\\\"\" }},",
            file.display().to_string(),
            fnv1a(&bytes),
        );
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("web_assets.rs"), table).expect("write the asset table");
}

/// Every file below `dir`, depth first (none when `dir` is missing).
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}

// `fnv1a`, shared with the server (src/web/hash.rs).
include!("src/web/hash.rs");
