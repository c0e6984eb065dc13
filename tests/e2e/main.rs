//! End-to-end tests: real compiled plugins, real SQLite files, the real `chathooks` binary.
//!
//! One test binary (so plugins are built and compiled once per run), one module per area:
//! - `runtime`: loading, refusing bad files, limits, traps, KV isolation, the compile cache.
//! - `cli`: `chathooks check` and `chathooks test` on every case file in the repository. `call`:
//!   `chathooks call` and the author tools' compile cache. `dev`: `chathooks dev` rebuilds a starter,
//!   runs its cases and drops the component into a plugins folder.
//! - `languages`: the Python, JavaScript and C example plugins pass their Rust twins' case files.
//! - `languages_server`: a Rust, Python, JavaScript and C plugin pair loaded at once in one server, each
//!   acting on the same message.
//! - `new`: `chathooks new` starters in every language build and pass their own case files.
//! - `server_allocator`: the binary allocates through jemalloc, configured as `chathooks::allocator` says.
//! - `server_api`: the REST API: the authorization table, the OpenAPI document, users and tokens.
//! - `server_errors`: bad input (malformed, empty, wrong types, oversize) and the error shape.
//! - `server_durability`: the `serve` binary killed with SIGKILL mid-stream and restarted; admin key;
//!   SIGTERM.
//! - `server_hooks`: before-hooks reject and modify through the API; after-hooks get what happened.
//!   `server_hooks_v0_3`: the hooks and fields added in WIT 0.3.0 reach an SDK plugin (the recorder).
//! - `server_ws`: the WebSocket: who sees which events, `?since=` after a reconnect, ping, shutdown.
//! - `cluster_catalog`: a cluster node publishes its plugins folder, runs the catalog, reports it in
//!   `GET /v1/admin/cluster`, and takes a `chathooks plugins push` at once.
//! - `server_postgres`: the server on PostgreSQL while PostgreSQL is unreachable, stopped and back.
//! - `server_roles`: roles and ownership, bans, blocking, over HTTP and WebSocket.
//! - `server_users`: user administration: the reserved bot namespace, listing, deactivating and
//!   reactivating users, tokens with an expiry, listed and revoked.
//! - `admin_plugins`: operating plugins over the admin API: settings checked and applied, disabling and
//!   enabling kept across a restart, uploads checked like a load (a bad one leaves the old version).
//!   `admin_plugins_cluster`: the same on a cluster node, through the catalog (PostgreSQL and NATS).
//! - `manifest_v2`: manifest v2: typed settings read through `config`, version and description in the
//!   admin list and `chathooks check`, a required setting without a value refusing the load.
//! - `server_support`: a real server on 127.0.0.1:0 with HTTP and WebSocket clients, for the above.
//! - `sandbox`: hostile plugins (loops, memory bomb, recursion, panic, huge answers, log and KV floods,
//!   sockets and files) fail alone; the circuit breaker. `sandbox_metrics`: `GET /metrics`.
//!   `sandbox_budget`: budgets count CPU time, not the machine's load. `sandbox_warmup`: interpreted filters warmed before they serve.
//! - `reload`: hot reload: load, replace, delete, manifests, bad files, slow copies, `--no-watch`.
//!   `reload_traffic`: reloads under continuous traffic lose and repeat nothing. `reload_tiers`: tiered
//!   compilation (Winch, then Cranelift) swaps without a failed request or a lost delivery.
//! - `sandbox_support`: plugin files, the admin plugin list and polling, for the above.
//! - `powers_bots`: bot replies over WebSocket, two bots stopped by the loop guard, custom events to
//!   participants only. `powers_http`: outbound HTTP to granted and ungranted hosts. `powers_push`: push
//!   to live clients and a signing gateway. `powers_timers`: a timer fires after a restart.
//!   `powers_cli`: the power examples' case files, `check` with grants, bad manifests.
//!   `powers_limits`: the powers' per-plugin rate limits on fake time. `powers_versions`: a plugin built
//!   against the frozen WIT 0.1.0 keeps loading and working. `versions_v0_2`: one built against 0.2.0
//!   still gets the participants list and the participant and admin ids.
//!   `powers_support`: plugins folders with manifests, restartable servers, a recording HTTP server.
//! - `web_assets`: the pages and files the server serves, their headers, the console's tail and history.
//!   `web_chat`: the chat client in two Chromium sessions through a plugin. `web_console`: the operator
//!   console in Chromium. `web_cluster`: both on two nodes of a cluster (PostgreSQL and NATS).
//!   `web_support`: a real headless Chromium over WebDriver, for these.

mod admin_plugins;
mod admin_plugins_cluster;
mod call;
mod cli;
mod cluster_catalog;
mod dev;
mod languages;
mod languages_server;
mod manifest_v2;
mod new;
mod powers_bots;
mod powers_cli;
mod powers_http;
mod powers_limits;
mod powers_push;
mod powers_support;
mod powers_timers;
mod powers_versions;
mod reload;
mod reload_tiers;
mod reload_traffic;
mod runtime;
mod sandbox;
mod sandbox_budget;
mod sandbox_metrics;
mod sandbox_support;
mod sandbox_warmup;
mod server_all_read;
mod server_allocator;
mod server_api;
mod server_durability;
mod server_errors;
mod server_hooks;
mod server_hooks_v0_3;
mod server_postgres;
mod server_presence;
mod server_roles;
mod server_support;
mod server_threads;
mod server_users;
mod server_ws;
mod versions_v0_2;
mod web_assets;
mod web_chat;
mod web_cluster;
mod web_console;
mod web_support;
