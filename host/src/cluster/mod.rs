//! Cluster mode: several `chathooks serve` nodes on one PostgreSQL database, with NATS carrying live
//! events between them (SCALE-OUT.md 2). A server is a node of a cluster when it is given NATS servers
//! ([`ClusterSettings`]); without them it runs on its own, exactly as before.
//!
//! What each part holds:
//! - [`subjects`]: the NATS subjects of a cluster, one place for their names.
//! - [`catalog`]: every node mirrors the cluster's plugin catalog into its own folder and loads it;
//!   [`publisher`]: a node whose plugins folder feeds the catalog; [`upload`]: checking a plugin file
//!   before it goes into the catalog (shared with `chathooks plugins push`).
//! - [`nodes`]: [`nodes::NodeState`], who this node is, and its heartbeat row.
//! - [`member`]: starting and stopping the parts above; [`view`]: the admin view of the cluster.

pub mod catalog;
#[cfg(test)]
mod catalog_tests;
pub mod member;
pub mod nodes;
pub mod publisher;
pub mod subjects;
pub mod upload;
pub mod view;

pub use crate::config::ClusterSettings;
