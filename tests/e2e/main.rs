//! End-to-end tests: real compiled plugins, real SQLite files, the real `chathooks` binary.
//!
//! One test binary (so plugins are built and compiled once per run), one module per area:
//! - `runtime`: loading, refusing bad files, limits, traps, KV isolation, the compile cache.
//! - `cli`: `chathooks check` and `chathooks test` on every case file in the repository.

mod cli;
mod runtime;
