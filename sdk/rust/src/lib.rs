//! Write [chathooks](https://example.invalid/chathooks) plugins in Rust.
//!
//! # Overview
//!
//! A chathooks plugin is a WebAssembly component that the chat server calls when something happens in a
//! conversation: a message is about to be sent (a *before-hook*, which may allow, change or reject it), or a
//! message was sent, edited, read, reacted to, a conversation was created, users joined, ... (*after-hooks*,
//! delivered at least once, in order per conversation). The contract is the WIT package
//! `chathooks:plugin@0.3.0` in the repository's `wit/` folder (carried by this SDK: the crate builds on its
//! own); this crate is its Rust face, generated from those files (the hooks, their parameters, their docs and the package version are read from the WIT when
//! the crate is built):
//!
//! - [`Plugin`]: one associated function per hook, each with a default body, so you implement only the hooks
//!   you need.
//! - [`plugin`]: the attribute that turns an `impl Plugin for YourType` block into the component's exports.
//!   It exports exactly the hooks the block defines: the server reads a component's exports to decide which
//!   hooks to call, so an unimplemented hook costs nothing.
//! - [`types`]: the records hooks receive ([`Message`](types::Message), [`Conversation`](types::Conversation),
//!   [`Participant`](types::Participant), [`Role`](types::Role), ...) and return
//!   ([`Decision`](types::Decision)), with helpers to parse their JSON metadata
//!   ([`Message::metadata_as`](types::Message::metadata_as)) and to build decisions
//!   ([`Decision::modify_body`](types::Decision::modify_body), [`Decision::reject`](types::Decision::reject),
//!   [`Decision::hold`](types::Decision::hold)).
//! - [`kv`]: the plugin's private key-value store, with JSON helpers; [`log`] and the [`info!`] family of
//!   macros: the server's log; [`config`]: the values of the plugin's manifest.
//! - [`chat::participants`]: who is in a conversation, with their roles (no grant needed; hooks no longer
//!   receive the list).
//! - The powers a manifest may grant: [`chat`] (post as the plugin's bot), [`events`] (custom live events),
//!   [`http`] (outbound requests to granted hosts), [`push`] (push notifications), [`scheduler`] (timers
//!   that call [`Plugin::on_timer`]); and [`hmac`] to sign what you send.
//! - [`prelude`]: `use chathooks_sdk::prelude::*;` brings all of the above into scope.
//!
//! # Example
//!
//! A plugin that counts messages per conversation, once per event even when an event is retried, refuses
//! empty messages and holds links from members for a moderator:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use chathooks_sdk::prelude::*;
//!
//! struct Counter;
//!
//! #[chathooks_sdk::plugin]
//! impl Plugin for Counter {
//!     fn before_message_sent(draft: Draft, conversation: Conversation) -> Decision {
//!         let no_metadata = draft.metadata_value().is_ok_and(|m| m.as_object().is_some_and(|o| o.is_empty()));
//!         if draft.body.trim().is_empty() && no_metadata {
//!             return Decision::reject("empty message");
//!         }
//!         if draft.body.contains("http") {
//!             // Hooks get no participant list: ask for it when it is needed.
//!             let Ok(participants) = chat::participants(&conversation.id) else {
//!                 return Decision::allow();
//!             };
//!             let sender = participants.iter().find(|p| p.id() == draft.sender.id);
//!             if sender.is_some_and(|p| p.role == Role::Member) {
//!                 return Decision::hold("links from members are reviewed");
//!             }
//!         }
//!         Decision::allow()
//!     }
//!
//!     fn after_message_sent(
//!         ctx: EventContext,
//!         message: Message,
//!         conversation: Conversation,
//!     ) -> Result<(), String> {
//!         // A retried event keeps its id: count it only the first time.
//!         let seen = format!("seen:{}", ctx.event_id);
//!         if kv::get(&seen)?.is_some() {
//!             return Ok(());
//!         }
//!         let total = kv::increment(&format!("conversation:{}", conversation.id), 1)?;
//!         kv::set(&seen, b"1", Some(Duration::from_secs(24 * 3600)))?;
//!         chathooks_sdk::info!("message {} is number {total} in {}", message.id, conversation.id);
//!         Ok(())
//!     }
//! }
//! ```
//!
//! The component built from this exports `chathooks:plugin/before-message-sent@0.3.0` and
//! `chathooks:plugin/after-message-sent@0.3.0`, nothing else. A function name in the block that is not a
//! hook is a compile error listing the valid names.
//!
//! # Building
//!
//! A plugin is a `cdylib` crate that depends only on this one:
//!
//! ```toml
//! [package]
//! name = "counter"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! chathooks-sdk = "0.1"
//!
//! # Small, fast components: 2.5 MB → about 60 KB.
//! [profile.release]
//! opt-level = "s"
//! lto = true
//! strip = true
//! panic = "abort"
//! codegen-units = 1
//! ```
//!
//! Until `chathooks-sdk` is on crates.io, point that dependency at a local copy of the SDK with a
//! `[patch.crates-io]` table in the plugin's `.cargo/config.toml` (which `chathooks new --sdk-path` writes):
//!
//! ```toml
//! [patch.crates-io]
//! chathooks-sdk = { path = "/path/to/chathooks/sdk/rust" }
//! ```
//!
//! `chathooks new counter --lang rust` writes such a crate, with a build script and a case file.
//!
//! Build it with `rustup target add wasm32-wasip2` once, then
//! `cargo build --target wasm32-wasip2 --release`; the component is
//! `target/wasm32-wasip2/release/counter.wasm`. Copy it (and its optional `counter.toml` manifest) into the
//! server's plugins directory; the server picks it up without a restart. `chathooks test counter.wasm
//! cases.json` runs it against recorded events.
//!
//! With `panic = "abort"` a panic traps the instance: the server then skips the plugin for a before-hook
//! (unless its manifest says `fail = "closed"`) and retries the event for an after-hook. Prefer returning
//! `Err` from after-hooks.
//!
//! # Layout
//!
//! - `plugin.rs`: the [`Plugin`] trait (its functions are written by `chathooks_sdk_macros::hook_methods!`
//!   from the WIT).
//! - `records.rs`: helpers on the generated [`types`].
//! - `kv.rs`, `log.rs`, `config.rs`, `chat.rs`, `events.rs`, `http.rs`, `push.rs`, `scheduler.rs`: the host
//!   interfaces, wrapped; `hmac.rs`: HMAC-SHA256.
//! - The `#[plugin]` attribute lives in the `chathooks-sdk-macros` crate (`sdk/macros`), with the WIT files
//!   both crates are generated from (`sdk/macros/wit/`, a copy of the repository's `wit/`).
//!
//! [`plugin`]: macro@plugin

#![deny(missing_docs)]

// The code the macros write names `::chathooks_sdk`, which must resolve inside this crate too
// (`hook_methods!` in `plugin.rs`).
extern crate self as chathooks_sdk;

mod plugin;
mod records;

pub mod chat;
pub mod config;
pub mod events;
pub mod hmac;
pub mod http;
pub mod kv;
pub mod log;
pub mod push;
pub mod scheduler;

pub use plugin::Plugin;

/// Exports the hooks an `impl Plugin for YourType` block defines, and only those; see the
/// [crate docs](crate#example).
pub use chathooks_sdk_macros::plugin;

/// The records of `chathooks:plugin/types`: what hooks receive and return.
pub use __bindings::chathooks::plugin::types;

pub use kv::{KvError, KvJsonError};

/// The JSON library the SDK uses, so plugins can build and parse JSON without their own dependency
/// (`chathooks_sdk::serde_json::json!({...})`).
pub use serde_json;

/// Serde, for plugins that derive `Serialize`/`Deserialize` without their own dependency: add
/// `#[serde(crate = "chathooks_sdk::serde")]` next to the derive.
pub use serde;

/// Re-exported for the code `#[plugin]` writes; not part of the API.
#[doc(hidden)]
pub use wit_bindgen;

/// The bindings of `chathooks:plugin` generated once for every plugin: `types` and every host interface. The code
/// `#[plugin]` writes points its own `generate!` here (with `with: {...}`) instead of generating them again.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod __bindings {
    // The package's `imports` world, whatever its version, from the WIT the macros crate carries (a copy
    // of the repository's `wit/`; older versions live in `wit/versions/` there and are not read).
    chathooks_sdk_macros::imports_bindings!();
}

/// `use chathooks_sdk::prelude::*;`: the trait, the attribute, the records and the `kv` and `log` modules.
pub mod prelude {
    pub use crate::types::{
        Ban, Conversation, Decision, Draft, EventContext, HeldMessage, Message, Modification,
        Origin, Participant, PluginOrigin, Presence, Reaction, Receipt, Role, TypingEvent,
        TypingState, User,
    };
    pub use crate::{
        KvError, KvJsonError, Plugin, chat, config, events, http, kv, log, plugin, push, scheduler,
    };
}
