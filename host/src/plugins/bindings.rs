//! The host side of the WIT package `chathooks:plugin@0.1.0`, generated once for the whole server.
//!
//! The world `all-hooks` names every hook the server can call; a plugin exports a subset, so the rest of the
//! host never uses the world's all-or-nothing loader. Each hook interface is looked up on its own through
//! its `GuestIndices` (see [`super::exports`]), and the imports are added to the linker one interface at a
//! time (see [`super::host`]).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "all-hooks",
});

pub use self::chathooks::plugin::{chat, config, events, http, kv, log, push, scheduler, types};
pub use self::exports::chathooks::plugin as hooks;

/// The WIT package version this server implements; components must import and export exactly this one.
pub const WIT_VERSION: &str = "0.1.0";

/// The WIT package name, without version.
pub const WIT_PACKAGE: &str = "chathooks:plugin";
