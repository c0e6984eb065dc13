//! Cluster mode: several `chathooks serve` nodes on one PostgreSQL database, with NATS carrying live
//! events between them (SCALE-OUT.md 2). A server is a node of a cluster when it is given NATS servers
//! ([`ClusterSettings`]); without them it runs on its own, exactly as before.
//!
//! What each part holds:
//! - [`subjects`]: the NATS subjects of a cluster, one place for their names.

pub mod subjects;

pub use crate::config::ClusterSettings;
