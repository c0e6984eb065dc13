//! One server per data folder: an exclusive OS file lock on `<data>/serve.lock`, held while the server
//! runs, with the holder's pid written in the file so a refused start can name it.
//!
//! Two servers on one folder would both run the dispatcher over the same outbox (every after-hook
//! delivered twice, attempt counts racing) and both fire the same plugin timers; SQLite's own locking
//! keeps the files intact but not those guarantees. The lock is `flock`-style ([`File::try_lock`]): the
//! operating system releases it when the process ends, however it ends, so a server killed with SIGKILL
//! leaves a file behind but never a stale lock, and no pid check or clean-up step is needed on restart.
//! The file is never deleted (deleting it while another process opens it would let two holders lock two
//! different files).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data folder.
pub const LOCK_FILE: &str = "serve.lock";

/// Why the data folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DataLockError {
    /// Another process holds the lock: a server is running on this folder.
    #[error(
        "the data folder {} is in use by another chathooks server ({}); stop it first, or give this \
         server another --data-dir",
        folder.display(),
        holder(*pid)
    )]
    InUse {
        /// The data folder.
        folder: PathBuf,
        /// The other server's process id, as it wrote it in the lock file (`None` if it had not yet, or
        /// the file was edited).
        pid: Option<u32>,
    },
    /// The folder or the lock file cannot be created, opened or locked.
    #[error("cannot lock the data folder {}: {source}", folder.display())]
    Io {
        /// The data folder.
        folder: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    }
}

/// The lock on a data folder; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataLock {
    /// The locked file: closing it releases the lock.
    _file: File,
    /// The data folder, for logs.
    folder: PathBuf,
}

impl DataLock {
    /// Creates `folder` if needed and locks it for this process, or says who holds it.
    pub fn acquire(folder: &Path) -> Result<DataLock, DataLockError> {
        // Named absolute in messages: "./data is in use" does not say which one.
        let folder = &std::path::absolute(folder).unwrap_or_else(|_| folder.to_owned());
        let io = |source| DataLockError::Io {
            folder: folder.to_owned(),
            source,
        };
        std::fs::create_dir_all(folder).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(folder.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(DataLockError::InUse {
                    folder: folder.to_owned(),
                    pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataLock {
            _file: file,
            folder: folder.to_owned(),
        })
    }

    /// The locked folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }
}

/// The pid a holder wrote in the lock file, if it is there and readable.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_folder_is_refused_naming_the_holder_until_the_lock_is_dropped() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let folder = dir.path().join("data");
        let first = DataLock::acquire(&folder);
        assert!(first.is_ok(), "{first:?}");
        match DataLock::acquire(&folder) {
            Err(DataLockError::InUse { folder: f, pid }) => {
                assert_eq!((f, pid), (folder.clone(), Some(std::process::id())));
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        // A child process forked by another test at this moment (a PostgreSQL server being started)
        // shares the lock file's descriptor until it execs, and with it the lock: wait that out.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let again = loop {
            match DataLock::acquire(&folder) {
                Err(DataLockError::InUse { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => break other,
            }
        };
        assert!(again.is_ok(), "{again:?}");
    }
}
