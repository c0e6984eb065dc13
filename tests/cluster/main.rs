//! Cluster mode end to end (SCALE-OUT.md 2.10): three real `chathooks serve` processes on one real
//! PostgreSQL and one real `nats-server`, driven through their HTTP API and WebSocket like users and
//! operators would, with nodes killed, paused and restarted and the servers restarted under them.
//!
//! ## Layout
//! Harness:
//! - [`cluster`]: starts PostgreSQL, NATS and N nodes ([`cluster::Cluster`]); one cluster at a time.
//! - [`node`]: one `chathooks serve` child: its address, its captured log lines, kill/pause/restart.
//! - [`api`]: the HTTP calls the cases make (users, conversations, sends, the admin cluster view).
//! - [`ws`]: a WebSocket client that collects every frame in the background.
//! - [`wait`]: polling with a deadline (no fixed sleeps).
//! - [`records`]: reading what the recorder fixture saw (its KV in PostgreSQL, its log lines per node).
//!
//! Cases (the table of SCALE-OUT.md 2.10):
//! - [`smoke`]: the harness itself: three nodes, one database.
//! - [`live`]: 1 cross-node live, 2 resume, 9 NATS restart.
//! - [`hooks`]: 3 hooks once in order, 4 node killed mid-delivery, 7 idempotent send.
//! - [`failover`]: 5 sequencer killed.
//! - [`powers`]: 6 timers, 11 KV across nodes.
//! - [`rollout`]: 8 plugin rollout.
//! - [`postgres`]: 10 PostgreSQL restart.
//!
//! Beyond the table: [`presence`]: presence and the all-read event across nodes.
//!
//! Without PostgreSQL or `nats-server` installed every case skips with a message;
//! `CHATHOOKS_REQUIRE_POSTGRES=1` / `CHATHOOKS_REQUIRE_NATS=1` (CI) make that a failure.

mod api;
mod cluster;
mod node;
mod records;
mod wait;
mod ws;

mod failover;
mod hooks;
mod live;
mod postgres;
mod powers;
mod presence;
mod rollout;
mod smoke;
