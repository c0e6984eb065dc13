//! Source changes in a plugin folder, debounced, with the build's output left out.

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

/// Folders a build writes into (or tools keep state in): changes there are not source changes.
const IGNORED_DIRS: &[&str] = &[
    "target",
    "gen",
    "node_modules",
    "__pycache__",
    "build",
    "dist",
];

/// A watch on a plugin folder.
pub struct Changes {
    root: PathBuf,
    events: Receiver<PathBuf>,
    _watcher: notify::RecommendedWatcher,
}

impl Changes {
    /// Watches `root` and everything under it.
    pub fn watch(root: &Path) -> anyhow::Result<Changes> {
        let (tx, events) = channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
                    return;
                }
                for path in event.paths {
                    let _ = tx.send(path);
                }
            })
            .context("starting the file watcher")?;
        watcher
            .watch(root, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", root.display()))?;
        Ok(Changes {
            root: root.to_path_buf(),
            events,
            _watcher: watcher,
        })
    }

    /// Waits for a source change, then for `quiet` without another; returns the first changed file.
    /// `None` when the watcher stopped.
    pub fn next_batch(&self, quiet: Duration) -> Option<PathBuf> {
        let first = loop {
            let path = self.events.recv().ok()?;
            if is_source(&self.root, &path) {
                break path;
            }
        };
        loop {
            match self.events.recv_timeout(quiet) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => return Some(first),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

/// Whether a change to `path` (under `root`) is a change to the plugin's sources.
pub fn is_source(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    let Some((file, dirs)) = parts.split_last() else {
        return false;
    };
    if dirs
        .iter()
        .any(|d| d.starts_with('.') || IGNORED_DIRS.contains(d))
    {
        return false;
    }
    // Hidden files, editor backups and swap files, and built components.
    !(file.starts_with('.')
        || file.ends_with('~')
        || file.ends_with(".swp")
        || file.ends_with(".wasm")
        || file.ends_with(".tmp")
        || IGNORED_DIRS.contains(file))
}

#[cfg(test)]
mod tests {
    use super::is_source;
    use std::path::Path;

    #[test]
    fn build_output_is_not_a_source_change() {
        let root = Path::new("/p");
        for source in [
            "/p/demo.c",
            "/p/src/lib.rs",
            "/p/cases.json",
            "/p/build.sh",
            "/p/wit/x.wit",
        ] {
            assert!(is_source(root, Path::new(source)), "{source}");
        }
        for output in [
            "/p/demo.wasm",
            "/p/target/wasm32-wasip2/release/demo.wasm",
            "/p/gen/plugin.c",
            "/p/node_modules/x/y.js",
            "/p/__pycache__/app.cpython.pyc",
            "/p/.chathooks/plugins/demo.wasm",
            "/p/.demo.c.swp",
            "/p/demo.c~",
            "/other/demo.c",
            "/p",
        ] {
            assert!(!is_source(root, Path::new(output)), "{output}");
        }
    }
}
