//! # chathooks
//!
//! A chat server whose behaviour is extended by WebAssembly components ("plugins") that implement hooks
//! from the WIT package `chathooks:plugin` in the top-level `wit/` folder.
//!
//! ## Overview
//! Data flows one way: request → chat operation → one SQLite transaction (change + event) → after-hooks
//! and live subscribers. Before-hooks run inline and may modify or reject a message.
//!
//! ## Layout
//! - [`plugins`]: the wasmtime engine, loading and checking components, the compile cache, warm instance
//!   pools, per-call limits, and the host interfaces plugins import (`log`, `kv`, `config` and the powers).
//! - [`powers`]: what the server does for plugins' powers: bot posts, custom events, outbound HTTP, push
//!   notifications (live and to a gateway), timers.
//! - [`store`]: SQLite; the only code that speaks SQL.
//! - [`web`]: the server's own web pages (operator console, chat client), embedded from `host/web/`.
//! - [`model`]: the chat records (users, conversations, messages, ...) as the server stores and serves them.
//! - [`events`]: the domain events (one per hook and WebSocket event) and their mapping to WIT types.
//! - [`chat`]: the chat operations: authorize, validate, before-hooks, one transaction with its events.
//! - [`dispatch`]: the outbox → after-hooks dispatcher: ordering, retries, dead letters.
//! - [`live`]: the in-process broadcast of events to WebSocket subscribers.
//! - [`api`]: the REST and WebSocket API (axum routers per resource, errors, OpenAPI document).
//! - [`metrics`]: `GET /metrics` in the Prometheus text format.
//! - [`server`]: shared state, the router, serving with graceful shutdown; [`config`]: its settings;
//!   [`clock`]: where time is read (a manual clock in tests); [`allocator`]: the binaries' memory allocator.

pub mod allocator;
pub mod api;
pub mod blocking;
pub mod cases;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dispatch;
pub mod events;
pub mod live;
pub mod metrics;
pub mod model;
pub mod plugin_admin;
pub mod plugins;
pub mod powers;
pub mod presence;
pub mod server;
pub mod stoppable;
pub mod store;
pub mod web;
