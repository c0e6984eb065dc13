//! The host side of the WIT package `chathooks:plugin`, generated once for the whole server: the current
//! version (0.3.0, in `wit/`) and every earlier one it still serves (0.2.0 and 0.1.0, frozen in
//! `wit/versions/`).
//!
//! The world `all-hooks` names every hook the server can call; a plugin exports a subset, so the rest of the
//! host never uses the world's all-or-nothing loader. Each hook interface is looked up on its own through
//! its `GuestIndices` (see [`super::hooks`]), and the imports are added to the linker one interface at a
//! time (see [`super::host`]).
//!
//! ## Versions
//! Each version has its own bindings, because each renames every interface (the linker registers an
//! import under its versioned name) and 0.3.0 changed the records of `types`. The records of 0.1.0 and
//! 0.2.0 are the same, so the 0.1.0 bindings reuse the 0.2.0 ones (`with:`). Hook calls are built once,
//! in the current types, and translated for a component of an older version when it is called
//! (`plugins::downgrade`, from [`super::hooks`]); its imports delegate to the current implementation
//! ([`super::host::v0_2`], [`super::host::v0_1`]).

/// `chathooks:plugin@0.3.0`, the current version.
pub mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "all-hooks",
    });
}

/// `chathooks:plugin@0.2.0`, frozen.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/versions/0.2.0",
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

pub use self::v0_3::chathooks::plugin::{
    chat, config, events, http, kv, log, push, scheduler, types,
};
pub use self::v0_3::exports::chathooks::plugin as hooks;

/// The WIT package version this server's SDK, examples and templates are built against: the newest.
pub const WIT_VERSION: &str = "0.3.0";

/// Every version of the package this server loads components of, newest first.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &[WIT_VERSION, "0.2.0", "0.1.0"];

/// The WIT package name, without version.
pub const WIT_PACKAGE: &str = "chathooks:plugin";

/// A version of the package that the server implements, as found in a component's exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WitVersion {
    /// `0.1.0`: before rate limits had their own error case.
    V0_1,
    /// `0.2.0`: before threads, roles, the moderation queue and participants on demand.
    V0_2,
    /// `0.3.0`: the current version.
    V0_3,
}

impl WitVersion {
    /// The version as WIT writes it, e.g. `0.3.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
            WitVersion::V0_3 => "0.3.0",
        }
    }

    /// The version written `text`, if the server implements it.
    pub fn parse(text: &str) -> Option<WitVersion> {
        [WitVersion::V0_3, WitVersion::V0_2, WitVersion::V0_1]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}
