//! The [`Plugin`] trait: one function per hook of `chathooks:plugin`, generated from the WIT.

/// A chathooks plugin: implement the hooks you need inside an `impl Plugin for YourType` block marked
/// `#[chathooks_sdk::plugin]`.
///
/// Every function is an associated function (no `self`): a plugin keeps no state in memory between events,
/// because the server may throw an instance away and start a fresh one at any time. Keep state in [`kv`].
///
/// The functions are written from the WIT (the exports of world `all-hooks`): one per hook, named as the
/// hook in snake case, with the WIT function's parameters and docs. Every function has a default body, so
/// an impl block lists only the hooks it implements, and the [`plugin`] attribute exports
/// exactly those. The defaults are never called by the server.
///
/// - **Before-hooks** (`before_message_sent`, `before_message_updated`) run inline with the sender's request
///   and return a [`Decision`](crate::types::Decision): allow, modify (body and metadata), reject with a
///   reason, or hold for a moderator's review. They have a small time budget.
/// - **After-hooks** (every other function but `on_timer`) run after the change is stored, at least once,
///   in order per conversation. Return `Err(reason)` to have the event retried later. A retried event keeps
///   its [`EventContext::event_id`](crate::types::EventContext::event_id); remember ids you have handled
///   (in [`kv`]) if acting twice would be wrong.
/// - **`on_timer`** is called when one of the plugin's timers is due (see [`scheduler`](crate::scheduler)).
///
/// Hooks receive no list of participants (a large group would cost every call): a hook that needs them
/// asks [`chat::participants`](crate::chat::participants).
///
/// [`kv`]: crate::kv
/// [`plugin`]: macro@crate::plugin
pub trait Plugin {
    chathooks_sdk_macros::hook_methods!();
}
