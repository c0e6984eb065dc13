//! The connections the store's calls run on, each driven by the thread that uses it.
//!
//! ## Why not the shared runtime
//! The seam is synchronous: a store call blocks its thread until PostgreSQL answers. With every
//! connection's I/O task on a shared multi-threaded runtime (`PgRuntime`), each
//! statement crossed threads twice: the caller woke the connection's task on a runtime thread, which
//! wrote to the socket and parked in `epoll`; the answer woke that thread, which woke the caller. On the
//! 2-core VM of BENCHMARKS.md that cost 47 µs of CPU and 250 µs of wall time per one-row `UPDATE`, against
//! 10 µs and 155 µs with the connection's I/O on the caller's own thread (problem 35: a probe of 20,000
//! statements each way), and with five plugins the server spent half its CPU per message parking and
//! waking those threads.
//!
//! ## How it works
//! Each connection here owns a current-thread tokio runtime, on which its I/O task was spawned when it
//! connected. A caller checks a connection out ([`DrivenPool::get`]) and runs its queries with that
//! runtime's `block_on` ([`Checkout::parts`]): the calling thread polls the query, the connection's task
//! and the socket itself, and sleeps in `epoll` until PostgreSQL answers. A runtime of this kind has no
//! thread of its own, so an idle connection costs nothing but its socket; a message the server sends it
//! meanwhile (the socket closed by a restart) is read when it is next used, where the callers already
//! handle a connection found closed (they take another, as at `BEGIN`).
//!
//! A future run on a checkout must need nothing but that connection: a task of another runtime it
//! waited for would run, but another checkout's connection would not move while its own thread waits.
//! The node's background work (migrations, locks, the sequencer, the cluster's catalog and heartbeats)
//! is async code on the shared runtime and keeps [`PgPool`](super::connect::PgPool) for that.
//!
//! ## Bounds
//! As [`PgPool`](super::connect::PgPool): at most [`PoolOptions::size`] connections, opened when needed,
//! and a caller that waits [`PoolOptions::wait`] for one gets [`PgError::PoolTimeout`] (a 503 upstream).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use deadpool_postgres::ClientWrapper;
use tokio::runtime::{Builder, Runtime};
use tokio_postgres::NoTls;

use super::connect::PoolOptions;
use super::error::{PgError, Result};
use super::setting::PgSetting;

/// Connections driven by their callers; cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct DrivenPool {
    shared: Arc<Shared>,
}

struct Shared {
    setting: PgSetting,
    options: PoolOptions,
    state: Mutex<State>,
    /// Signalled when a connection goes back idle or a slot frees up.
    freed: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Driven>,
    /// Connections open or being opened, idle or checked out.
    open: usize,
}

/// One connection and the runtime its I/O task runs on.
struct Driven {
    client: ClientWrapper,
    /// `None` only while being dropped.
    runtime: Option<Runtime>,
}

impl Drop for Driven {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime the usual way may block, which panics in async code (a server's
            // state dropped at the end of `main`); this runtime has no thread to wait for anyway.
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for DrivenPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("DrivenPool")
            .field("setting", &self.shared.setting)
            .field("options", &self.shared.options)
            .field("open", &state.open)
            .field("idle", &state.idle.len())
            .finish()
    }
}

impl DrivenPool {
    /// A pool of at most `options.size` connections to `setting`; none is opened before it is needed.
    pub fn new(setting: PgSetting, options: PoolOptions) -> Self {
        Self {
            shared: Arc::new(Shared {
                setting,
                options: PoolOptions {
                    size: options.size.max(1),
                    ..options
                },
                state: Mutex::new(State::default()),
                freed: Condvar::new(),
            }),
        }
    }

    /// Where the pool connects.
    pub fn setting(&self) -> &PgSetting {
        &self.shared.setting
    }

    /// How the pool was sized.
    pub fn options(&self) -> PoolOptions {
        self.shared.options
    }

    /// A connection: an idle one, else a new one if the pool has room, else the first to come back
    /// within [`PoolOptions::wait`]. Blocks; opening a connection runs on this thread too.
    pub fn get(&self) -> Result<Checkout> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.options.wait;
        let mut state = shared.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(self.checkout(conn));
            }
            if state.open < shared.options.size {
                state.open += 1;
                drop(state);
                return match connect(&shared.setting) {
                    Ok(conn) => Ok(self.checkout(conn)),
                    Err(error) => {
                        shared.release_slot();
                        Err(error)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PgError::PoolTimeout {
                    setting: shared.setting.redacted().to_owned(),
                    waited: shared.options.wait,
                    size: shared.options.size,
                });
            }
            state = shared
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn checkout(&self, conn: Driven) -> Checkout {
        Checkout {
            pool: self.clone(),
            conn: Some(conn),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection closed or never opened: its slot is free for another.
    fn release_slot(&self) {
        self.lock().open -= 1;
        self.freed.notify_one();
    }
}

/// A checked-out connection; back to the pool when dropped, unless it was closed or
/// [`Checkout::discard`]ed.
pub struct Checkout {
    pool: DrivenPool,
    /// `None` once discarded.
    conn: Option<Driven>,
}

impl Checkout {
    /// The runtime to `block_on` the connection's queries with, and the connection.
    pub fn parts(&mut self) -> (&Runtime, &mut ClientWrapper) {
        let Some(Driven {
            client,
            runtime: Some(runtime),
        }) = self.conn.as_mut()
        else {
            unreachable!("a checkout holds its connection until it is dropped");
        };
        (runtime, client)
    }

    /// Closes the connection instead of keeping it (the server closed it), freeing its slot.
    pub fn discard(mut self) {
        if self.conn.take().is_some() {
            self.pool.shared.release_slot();
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let shared = &self.pool.shared;
        if conn.client.is_closed() {
            drop(conn);
            shared.release_slot();
            return;
        }
        if let Some(runtime) = &conn.runtime {
            // A transaction dropped without its commit or rollback (its closure failed) has queued its
            // `ROLLBACK` for the connection's task, which runs only while someone drives this runtime:
            // send it now, so the server ends the transaction and releases its locks while the
            // connection waits idle, not when it is next used.
            runtime.block_on(tokio::task::yield_now());
        }
        shared.lock().idle.push(conn);
        shared.freed.notify_one();
    }
}

/// Opens a connection to `setting` on a runtime of its own, on this thread.
fn connect(setting: &PgSetting) -> Result<Driven> {
    let runtime = Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| PgError::Pool {
            setting: setting.redacted().to_owned(),
            reason: format!("cannot start a runtime for a connection: {error}"),
        })?;
    let connected = runtime.block_on(setting.config().connect(NoTls));
    let (client, connection) = connected.map_err(|error| PgError::Unreachable {
        setting: setting.redacted().to_owned(),
        error,
    })?;
    let task = runtime.spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "a PostgreSQL connection ended");
        }
    });
    Ok(Driven {
        client: ClientWrapper::new(client, task),
        runtime: Some(runtime),
    })
}
