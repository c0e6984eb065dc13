//! Calls made with cold caches. In a loop a hook call finds its plugin's code, memory and store in the
//! core's caches from the call before; in a server it does not: the request's HTTP, SQLite, the other
//! plugins and the load generator run between two calls to one plugin, so each call misses where the loop
//! hits. Table 1c times a few calls both ways, so the gap between a call in a loop and a call in place
//! (BENCHMARKS.md, problems 24 and 25) is measured, not guessed.

use std::hint::black_box;

/// Bytes written before each cold call: four times a core's 2 MiB L2 on this project's machines, and
/// 2,048 pages, more than the second-level TLB holds.
const EVICT_BYTES: usize = 8 << 20;

/// Cache line size on x86-64 and aarch64.
const LINE: usize = 64;

/// A buffer that, written a line at a time, pushes whatever a call used out of the core's caches.
pub struct Evictor {
    buffer: Vec<u8>,
}

impl Evictor {
    pub fn new() -> Self {
        Evictor {
            buffer: vec![1; EVICT_BYTES],
        }
    }

    /// Writes one byte in every cache line of the buffer (dirty lines, so they must be written back
    /// before anything else takes their place).
    pub fn evict(&mut self) {
        for byte in self.buffer.iter_mut().step_by(LINE) {
            *byte = byte.wrapping_add(1);
        }
        black_box(&self.buffer);
    }
}
