//! Cluster mode: several `chathooks serve` nodes on one PostgreSQL database, with NATS carrying live
//! events between them (SCALE-OUT.md 2). A server is a node of a cluster when it is given NATS servers
//! ([`ClusterSettings`]); without them it runs on its own, exactly as before.
//!
//! What each part holds:
//! - [`subjects`]: the NATS subjects of a cluster, one place for their names; [`wire`]: what is sent on
//!   them.
//! - [`nats`]: the connection, the hub's relay to every node, and coalescing pokes.
//! - [`sequencer`]: the role one node holds, turning event drafts into events and publishing them.
//! - [`node`]: starting and stopping a node's cluster parts.
//! - [`feed`]: every node's subscription that hands its hub the events in id order, filling gaps from
//!   the database.
//! - [`catalog`]: every node mirrors the cluster's plugin catalog into its own folder and loads it;
//!   [`publisher`]: a node whose plugins folder feeds the catalog; [`upload`]: checking a plugin file
//!   before it goes into the catalog (shared with `chathooks plugins push`).
//! - [`nodes`]: [`nodes::NodeState`], who this node is, and its heartbeat row.
//! - [`member`]: starting and stopping the catalog, publisher and heartbeat; [`view`]: the admin view of
//!   the cluster.

pub mod catalog;
#[cfg(test)]
mod catalog_tests;
pub mod feed;
pub mod member;
pub mod nats;
pub mod node;
pub mod nodes;
pub mod publisher;
pub mod sequencer;
pub mod subjects;
pub mod upload;
pub mod view;
pub mod wire;

pub use crate::config::ClusterSettings;

#[cfg(test)]
mod tests;
