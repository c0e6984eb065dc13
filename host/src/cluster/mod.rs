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

pub mod feed;
pub mod nats;
pub mod node;
pub mod sequencer;
pub mod subjects;
pub mod wire;

pub use crate::config::ClusterSettings;

#[cfg(test)]
mod tests;
