//! The host side of the WIT package `chathooks:plugin`, generated once for the whole server: the current
//! version (0.2.0, in `wit/`) and every earlier one it still serves (0.1.0, frozen in
//! `wit/versions/0.1.0/`).
//!
//! The world `all-hooks` names every hook the server can call; a plugin exports a subset, so the rest of the
//! host never uses the world's all-or-nothing loader. Each hook interface is looked up on its own through
//! its `GuestIndices` (see [`super::hooks`]), and the imports are added to the linker one interface at a
//! time (see [`super::host`]).
//!
//! ## Versions
//! The records of `types` did not change between versions, so the 0.1.0 bindings reuse the 0.2.0 ones
//! (`with:`): a hook call carries the same Rust values whichever version the component exports, and only
//! the lookup of the export differs. Interfaces whose functions changed (the powers' error variants gained
//! `rate-limited`) and those merely renamed by the version (`log`, `kv`, `config`: the linker registers
//! each under its versioned name) are generated per version; the 0.1.0 host side delegates to the 0.2.0 one
//! (`super::host::v0_1`).

/// `chathooks:plugin@0.2.0`, the current version.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "all-hooks",
    });
}

/// `chathooks:plugin@0.1.0`, frozen: its own import and export interfaces over the 0.2.0 records.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/versions/0.1.0",
        world: "all-hooks",
        with: {
            "chathooks:plugin/types@0.1.0": crate::plugins::bindings::v0_2::chathooks::plugin::types,
        },
    });
}

pub use self::v0_2::chathooks::plugin::{
    chat, config, events, http, kv, log, push, scheduler, types,
};
pub use self::v0_2::exports::chathooks::plugin as hooks;

/// The WIT package version this server's SDK, examples and templates are built against: the newest.
pub const WIT_VERSION: &str = "0.2.0";

/// Every version of the package this server loads components of, newest first.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &[WIT_VERSION, "0.1.0"];

/// The WIT package name, without version.
pub const WIT_PACKAGE: &str = "chathooks:plugin";

/// A version of the package that the server implements, as found in a component's exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WitVersion {
    /// `0.1.0`: before rate limits had their own error case.
    V0_1,
    /// `0.2.0`: the current version.
    V0_2,
}

impl WitVersion {
    /// The version as WIT writes it, e.g. `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
        }
    }

    /// The version written `text`, if the server implements it.
    pub fn parse(text: &str) -> Option<WitVersion> {
        [WitVersion::V0_2, WitVersion::V0_1]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}
