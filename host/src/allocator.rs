//! The memory allocator of the server's binaries (`chathooks`, and `chathooks-bench`, which runs the
//! server as itself): jemalloc on Unix, configured for a server whose threads mostly sit idle. Each binary
//! declares it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: chathooks::allocator::Allocator = chathooks::allocator::Allocator;
//! ```
//!
//! ## Why not the system's
//! A send with five plugins allocates and frees a few hundred blocks on several threads (the request's,
//! the dispatcher's rounds, the rows of after-hook calls). A profile of the end-to-end benchmark at 16
//! clients (BENCHMARKS.md, problem 26) found glibc's `malloc` and `free` at about 50 µs of the server's
//! 375 µs of CPU per message with plugins, 30 of them in what plugins add, much of it in glibc's slow
//! paths (`malloc_consolidate`, `unlink_chunk`). With jemalloc, configured as below, six runs each
//! alternating: 16 clients +8% messages/s without plugins and +10% with, one client within the noise.
//!
//! ## The configuration ([`MALLOC_CONF`])
//! jemalloc's defaults keep a cache per thread of up to 32 KiB blocks and four arenas per core. A server
//! holding 1,000 WebSocket connections runs some 70 threads (most of them the blocking pool's, idle), and
//! those defaults made it resident in 100-107 MiB against glibc's 61. Small thread caches (blocks up to
//! 1 KiB, a few of each size) and one arena per core (`percpu_arena`: a thread allocates from the arena
//! of the core it runs on, however many threads there are) bring it to 59 MiB while keeping the gain
//! (with the default thread caches the gain was about the same, so the caches' size is not what pays).

/// The allocator the binaries declare as `#[global_allocator]`.
#[cfg(unix)]
pub use tikv_jemallocator::Jemalloc as Allocator;

/// The allocator the binaries declare as `#[global_allocator]`: the system's where jemalloc is not used.
#[cfg(not(unix))]
pub use std::alloc::System as Allocator;

/// jemalloc's options, as its `malloc_conf` string (see the module docs). The environment variable
/// `_RJEM_MALLOC_CONF` is read after it, so an operator can still override any of them.
#[cfg(unix)]
pub const OPTIONS: &std::ffi::CStr =
    c"percpu_arena:percpu,tcache_max:1024,tcache_nslots_small_min:4,\
tcache_nslots_small_max:8,tcache_nslots_large:2";

/// A C string pointer jemalloc reads once, when the process first allocates.
#[cfg(unix)]
#[derive(Debug)]
#[repr(transparent)]
pub struct ConfText(*const std::ffi::c_char);

// SAFETY: the pointer is to a `'static` C string that nothing ever writes.
#[cfg(unix)]
#[allow(unsafe_code)]
unsafe impl Sync for ConfText {}

/// [`OPTIONS`] where jemalloc looks for them: its `malloc_conf` symbol (prefixed `_rjem_` by
/// `tikv-jemalloc-sys`), a weak definition in jemalloc that this strong one replaces.
#[cfg(unix)]
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: ConfText = ConfText(OPTIONS.as_ptr());
