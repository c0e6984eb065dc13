//! Small helpers shared by the servers: finding binaries, running a command to completion, picking a free
//! port, making names no other test uses.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// `name` in a folder of `PATH`, or in one of `extra` (folders that are often missing from a non-root
/// `PATH`, such as `/usr/sbin` where Debian puts `nats-server`).
pub(crate) fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs `cmd` to completion; its stdout when it succeeds, else [`Error::Failed`] with everything it
/// printed.
pub(crate) fn run(server: &'static str, step: &str, cmd: &mut Command) -> Result<String> {
    let output = cmd.output().map_err(|source| Error::Io {
        server,
        step: format!("{step} ({})", program_name(cmd)),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    Err(Error::Failed {
        server,
        step: step.to_owned(),
        detail: format!(
            "{} exited with {}\n{stdout}{}",
            program_name(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

fn program_name(cmd: &Command) -> String {
    Path::new(cmd.get_program()).display().to_string()
}

/// A loopback port nothing listens on right now. Another process may take it before the server binds
/// it; callers retry once with a new port when the server cannot bind.
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// 16 hex digits that differ between calls and between processes: the standard library's per-process
/// random hash keys, mixed with a counter.
pub(crate) fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The last `max` bytes of the text file at `path` (a server's log, for an error message), or a note
/// that it cannot be read.
pub(crate) fn tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}
