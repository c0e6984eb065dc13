//! A SQLite VFS that writes each transaction's WAL frames with one system call instead of two per page.
//!
//! SQLite appends a commit to the write-ahead log one frame at a time: a 24-byte header, then the page,
//! each its own `pwrite`. A plain send changes 9 pages, so 18 system calls, and those calls were 18% of
//! the server's CPU per message at one client (BENCHMARKS.md, problem 22). This VFS wraps the platform's
//! default one and changes only the WAL file: frames appended one after another gather in a buffer,
//! which goes to the file in one write
//! - once the frame that commits the transaction is in it (that frame's header carries the database's
//!   size after the commit, the other frames' carry zero). SQLite publishes a commit to readers only
//!   after it wrote the commit frame, so the commit is on the file when they see it, as without the
//!   buffer, and a failed write fails the commit;
//! - before any other operation on the WAL file (a read, a sync, a truncation, its size, closing it), and
//!   before a write that does not continue the buffer or would overflow it, so the file sees the same
//!   writes in the same order.
//!
//! Writes before the end of the last commit go straight to the file: after writing the commit frame,
//! and before publishing the commit, SQLite rewrites the checksums of the frames of its transaction that
//! it wrote twice (pages spilled from a full cache, then changed again), and no commit frame follows
//! those writes to flush them. A new log (the header written at offset 0) starts appending from the
//! start again.
//!
//! The database file, the shared-memory index and every other file go straight to the default VFS. Only
//! connections that write open through it ([`open_writer`]); readers append nothing.

use std::ffi::{CStr, c_int, c_void};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

use rusqlite::{Connection, OpenFlags, ffi};

/// The name the VFS is registered under.
const NAME: &CStr = c"chathooks-wal";

/// Bytes gathered at most before they are written: a transaction larger than this (a group commit of
/// many sends, a KV batch of hundreds of rows) is written in pieces of about this size. It must stay
/// under 128 KiB: SQLite's unix VFS writes at most 128 KiB - 1 bytes per system call and, given a
/// write of a larger size, writes its size modulo 128 KiB, so 128 KiB exactly is a write of nothing,
/// which it reports as a full disk.
const CAPACITY: usize = 64 << 10;

/// The size of a WAL frame's header (SQLite's `WAL_FRAME_HDRSIZE`).
const FRAME_HEADER: usize = 24;

/// Opens the connection that writes the database at `path` (read-write, created if missing) through
/// this VFS, registering it first (once per process, not as the default). Should registering fail,
/// which only a SQLite without a default VFS would do, the connection writes as SQLite alone does.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(register) {
        Connection::open_with_flags_and_vfs(path, OpenFlags::default(), NAME)
    } else {
        Connection::open(path)
    }
}

/// A WAL file: the default VFS's file behind it, and the writes not yet made.
#[repr(C)]
struct WalFile {
    /// What SQLite sees; must come first.
    base: ffi::sqlite3_file,
    /// The default VFS's file, in the same allocation right after this struct.
    real: *mut ffi::sqlite3_file,
    /// Bytes to write at `start`, in order.
    pending: Vec<u8>,
    start: i64,
    /// The last write was the header of a commit frame: the next one, its page, ends the transaction.
    commit_page_next: bool,
    /// Where the last commit written ends: a write before it rewrites committed frames.
    committed_end: i64,
}

/// The default VFS this one wraps, a static object of SQLite's (set once, before registering).
static INNER: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(std::ptr::null_mut());

#[allow(unsafe_code)]
fn register() -> bool {
    // SAFETY: sqlite3_vfs_find with a null name returns the default VFS, a static object; the copy we
    // register is leaked, so it outlives every connection, as SQLite requires.
    unsafe {
        let default = ffi::sqlite3_vfs_find(std::ptr::null());
        if default.is_null() {
            return false;
        }
        INNER.store(default, Ordering::Release);
        let mut vfs: ffi::sqlite3_vfs = std::ptr::read(default);
        let Ok(size) =
            c_int::try_from(header_size() + usize::try_from((*default).szOsFile).unwrap_or(0))
        else {
            return false;
        };
        vfs.szOsFile = size;
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = NAME.as_ptr();
        vfs.xOpen = Some(open);
        let vfs = Box::into_raw(Box::new(vfs));
        ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
    }
}

/// Where the default VFS's file starts in our allocation (aligned for it).
const fn header_size() -> usize {
    let size = std::mem::size_of::<WalFile>();
    size.div_ceil(16) * 16
}

#[allow(unsafe_code)]
unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner = INNER.load(Ordering::Acquire);
    if inner.is_null() {
        return ffi::SQLITE_ERROR;
    }
    // SAFETY: SQLite gives `file` with our szOsFile bytes; the default VFS's file fits in it, at the
    // start (any other file: it is then entirely the default VFS's) or after our header (the WAL).
    unsafe {
        let Some(inner_open) = (*inner).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return inner_open(inner, name, file, flags, out_flags);
        }
        let real = file
            .cast::<u8>()
            .add(header_size())
            .cast::<ffi::sqlite3_file>();
        let rc = inner_open(inner, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        std::ptr::write(
            file.cast::<WalFile>(),
            WalFile {
                base: ffi::sqlite3_file {
                    pMethods: &WAL_METHODS,
                },
                real,
                pending: Vec::new(),
                start: 0,
                commit_page_next: false,
                committed_end: 0,
            },
        );
        ffi::SQLITE_OK
    }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// Our file and the default VFS's methods for its file.
#[allow(unsafe_code)]
unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (&'a mut WalFile, &'a ffi::sqlite3_io_methods) {
    // SAFETY: SQLite calls these methods only on files our `open` initialized as a WalFile, one thread
    // at a time; the default VFS set its file's methods when it opened it.
    unsafe {
        let wal = &mut *file.cast::<WalFile>();
        let methods = &*(*wal.real).pMethods;
        (wal, methods)
    }
}

impl WalFile {
    /// Writes what is gathered.
    #[allow(unsafe_code)]
    fn flush(&mut self, methods: &ffi::sqlite3_io_methods) -> c_int {
        if self.pending.is_empty() {
            return ffi::SQLITE_OK;
        }
        let Ok(len) = c_int::try_from(self.pending.len()) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        // SAFETY: our file's default-VFS file, and our buffer of `len` bytes.
        let rc = unsafe {
            write_through(
                methods,
                self.real,
                self.pending.as_ptr().cast::<c_void>(),
                len,
                self.start,
            )
        };
        self.pending.clear();
        rc
    }
}

/// The default VFS's write of `amount` bytes at `buf` to its file `real`.
///
/// # Safety
/// `real` is the default VFS's open file whose methods are `methods`, and `buf` holds `amount` bytes.
#[allow(unsafe_code)]
unsafe fn write_through(
    methods: &ffi::sqlite3_io_methods,
    real: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    match methods.xWrite {
        // SAFETY: as the caller promised.
        Some(write) => unsafe { write(real, buf, amount, offset) },
        None => ffi::SQLITE_IOERR_WRITE,
    }
}

/// Writes what is gathered, then calls `method` with the default VFS's methods and file.
#[allow(unsafe_code)]
unsafe fn flush_then(
    file: *mut ffi::sqlite3_file,
    method: impl FnOnce(&ffi::sqlite3_io_methods, *mut ffi::sqlite3_file) -> c_int,
) -> c_int {
    // SAFETY: see `parts`.
    let (wal, methods) = unsafe { parts(file) };
    let rc = wal.flush(methods);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    method(methods, wal.real)
}

#[allow(unsafe_code)]
unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: see `parts`; SQLite's buffer holds `amount` bytes.
    let (wal, methods) = unsafe { parts(file) };
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    if offset == 0 {
        // The header of a new log: what follows is appended from the start.
        wal.committed_end = 0;
    }
    let append = offset >= wal.committed_end && len <= CAPACITY;
    let continues = append
        && !wal.pending.is_empty()
        && i64::try_from(wal.pending.len()).is_ok_and(|n| wal.start + n == offset)
        && wal.pending.len() + len <= CAPACITY;
    if !continues {
        let rc = wal.flush(methods);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        wal.start = offset;
    }
    if !append {
        // A frame rewritten after its commit (SQLite rewrites checksums once the commit frame is
        // written, before it publishes the commit): straight to the file.
        // SAFETY: our file's default-VFS file, and SQLite's buffer of `amount` bytes.
        return unsafe { write_through(methods, wal.real, buf, amount, offset) };
    }
    wal.pending.extend_from_slice(bytes);
    let commits = if len == FRAME_HEADER {
        wal.commit_page_next = bytes[4..8] != [0, 0, 0, 0];
        false
    } else {
        std::mem::take(&mut wal.commit_page_next)
    };
    if commits {
        let rc = wal.flush(methods);
        if rc == ffi::SQLITE_OK {
            wal.committed_end = offset.saturating_add(i64::from(amount));
        }
        return rc;
    }
    ffi::SQLITE_OK
}

#[allow(unsafe_code)]
unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see `parts`; after this SQLite never uses the file again, so the buffer is dropped.
    let (wal, methods) = unsafe { parts(file) };
    let flushed = wal.flush(methods);
    let closed = match methods.xClose {
        Some(close) => unsafe { close(wal.real) },
        None => ffi::SQLITE_OK,
    };
    unsafe { std::ptr::drop_in_place(file.cast::<WalFile>()) };
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite's arguments, passed on to the default VFS's method for its file.
    unsafe {
        flush_then(file, |m, real| match m.xRead {
            Some(f) => f(real, buf, amount, offset),
            None => ffi::SQLITE_IOERR_READ,
        })
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: SQLite's arguments, passed on to the default VFS's method for its file.
    unsafe {
        flush_then(file, |m, real| match m.xTruncate {
            Some(f) => f(real, size),
            None => ffi::SQLITE_IOERR_TRUNCATE,
        })
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite's arguments, passed on to the default VFS's method for its file.
    unsafe {
        flush_then(file, |m, real| match m.xSync {
            Some(f) => f(real, flags),
            None => ffi::SQLITE_IOERR_FSYNC,
        })
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: SQLite's arguments, passed on to the default VFS's method for its file.
    unsafe {
        flush_then(file, |m, real| match m.xFileSize {
            Some(f) => f(real, size),
            None => ffi::SQLITE_IOERR_FSTAT,
        })
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite's arguments, passed on to the default VFS's method for its file.
    unsafe {
        flush_then(file, |m, real| match m.xLock {
            Some(f) => f(real, level),
            None => ffi::SQLITE_OK,
        })
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite's arguments, passed on to the default VFS's method for its file.
    unsafe {
        flush_then(file, |m, real| match m.xUnlock {
            Some(f) => f(real, level),
            None => ffi::SQLITE_OK,
        })
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: SQLite's arguments, passed on to the default VFS's method for its file.
    unsafe {
        flush_then(file, |m, real| match m.xCheckReservedLock {
            Some(f) => f(real, out),
            None => ffi::SQLITE_OK,
        })
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: SQLite's arguments, passed on to the default VFS's method for its file.
    unsafe {
        flush_then(file, |m, real| match m.xFileControl {
            Some(f) => f(real, op, arg),
            None => ffi::SQLITE_NOTFOUND,
        })
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see `parts`.
    let (wal, m) = unsafe { parts(file) };
    match m.xSectorSize {
        Some(f) => unsafe { f(wal.real) },
        None => 4096,
    }
}

#[allow(unsafe_code)]
unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see `parts`.
    let (wal, m) = unsafe { parts(file) };
    match m.xDeviceCharacteristics {
        Some(f) => unsafe { f(wal.real) },
        None => 0,
    }
}

#[cfg(test)]
#[path = "wal_vfs_tests.rs"]
mod tests;
