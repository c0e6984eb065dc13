//! [`PgRuntime`]: the backend's own tokio runtime, for the node's background work (migrations, the
//! server lock, the sequencer, the cluster's catalog and heartbeats) on
//! [`PgDb::pool`](super::PgDb::pool). The store's calls do not run on it: they drive their own
//! connections ([`super::driven`]).

use tokio::runtime::{Builder, Handle, Runtime};

use crate::store::error::Result;

/// Worker threads of the backend's runtime. Two keep the node's background work off the critical path
/// without taking a machine's cores from request handling.
pub const RUNTIME_THREADS: usize = 2;

/// The backend's tokio runtime. Shut down without waiting when the last of them is dropped: dropping a
/// runtime the usual way blocks, which panics when the drop happens in async code (a server's state
/// dropped at the end of `main`).
pub(super) struct PgRuntime {
    /// Where connections and their tasks run.
    handle: Handle,
    /// The runtime itself; `None` only while being dropped.
    runtime: Option<Runtime>,
}

impl PgRuntime {
    pub(super) fn new() -> Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("chathooks-pg")
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// The runtime's handle, to `block_on` with.
    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for PgRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
