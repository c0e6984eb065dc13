//! The before-hook chain: every running plugin that exports the hook, in order (priority, then name),
//! each seeing the draft as the previous one left it.
//!
//! - `allow` keeps the draft; `modify` replaces its body and/or metadata; the first `reject` stops the
//!   chain and the message with [`ChatError::Rejected`]; the first `hold` stops the chain and the draft
//!   goes to the moderation queue ([`Chained::Hold`]) instead of the conversation.
//! - A plugin that traps, runs out of time or returns an unusable modification (metadata that is not a
//!   JSON object, a body over the limit) is skipped and counted as a failure (fail open), unless its
//!   manifest says `fail = "closed"`, in which case the message is rejected in its name.
//! - A plugin its circuit breaker has disabled is not called: skipped, or (fail closed) the message is
//!   rejected in its name.

use crate::events::to_wit;
use crate::model::{Origin, User};
use crate::plugins::bindings::types::{Decision, Draft};
use crate::plugins::registry::{FailMode, LoadedPlugin};
use crate::plugins::{CallError, Hook, HookCall, HookOutput};

use super::ChatError;
use super::messages::{check_content, metadata_from_text};

/// The parts of a message before-hooks may change, plus what they see but cannot change.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftContent {
    /// The text.
    pub body: String,
    /// The metadata (a JSON object).
    pub metadata: serde_json::Value,
}

/// Runs `hook` over `content` for a message by `sender` in `conversation_id`, through `chain`: the
/// plugins that export it, as [`Registry::ordered`](crate::plugins::registry::Registry::ordered) returns
/// them. The caller takes that snapshot first so it builds the hook's arguments (the participants with
/// their unread counts) only when the chain is not empty. `make_call` builds the hook call around the
/// current draft. Blocking; in place on an async worker while the send is the only blocking work
/// running ([`crate::blocking::off_worker_unless_alone`]) and every plugin of the chain
/// [`calls_in_place`](crate::plugins::Plugin::calls_in_place), else off it once for the whole chain
/// ([`crate::blocking::off_worker`]), not once per plugin.
pub fn run_chain(
    chain: &[LoadedPlugin],
    hook: Hook,
    conversation_id: &str,
    sender: &User,
    origin: &Origin,
    content: DraftContent,
    make_call: impl Fn(Draft) -> HookCall,
) -> Result<Chained, ChatError> {
    let run = || {
        chain_here(
            chain,
            hook,
            conversation_id,
            sender,
            origin,
            content,
            make_call,
        )
    };
    if chain.iter().all(|loaded| loaded.plugin.calls_in_place()) {
        crate::blocking::off_worker_unless_alone(run)
    } else {
        crate::blocking::off_worker(run)
    }
}

/// [`run_chain`] on this thread.
fn chain_here(
    chain: &[LoadedPlugin],
    hook: Hook,
    conversation_id: &str,
    sender: &User,
    origin: &Origin,
    mut content: DraftContent,
    make_call: impl Fn(Draft) -> HookCall,
) -> Result<Chained, ChatError> {
    for plugin in chain {
        let draft = to_wit::draft(
            conversation_id,
            sender,
            &content.body,
            &content.metadata,
            origin,
        );
        match decide(plugin, &make_call(draft), &content) {
            Ok(Step::Keep) => {}
            Ok(Step::Replace(next)) => content = next,
            Ok(Step::Hold(reason)) => {
                return Ok(Chained::Hold {
                    content,
                    plugin: plugin.name().to_owned(),
                    reason,
                });
            }
            Ok(Step::Reject(reason)) => {
                return Err(ChatError::Rejected {
                    plugin: plugin.name().to_owned(),
                    reason,
                });
            }
            Err(Failure { error, disabled }) => {
                if disabled {
                    tracing::debug!(plugin = plugin.name(), hook = hook.name(), "{error}");
                } else {
                    plugin.warn_before_hook_failure(hook, &error);
                }
                if plugin.settings.fail == FailMode::Closed {
                    return Err(ChatError::Rejected {
                        plugin: plugin.name().to_owned(),
                        reason: format!(
                            "the plugin failed and is configured to fail closed: {error}"
                        ),
                    });
                }
            }
        }
    }
    Ok(Chained::Send(content))
}

/// Where a draft goes once the chain is done with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Chained {
    /// Store it, as every plugin left it.
    Send(DraftContent),
    /// Hold it for review: a plugin answered `hold`.
    Hold {
        /// The draft as the plugins before the holder left it.
        content: DraftContent,
        /// The plugin that held it.
        plugin: String,
        /// Its reason, for the moderators.
        reason: String,
    },
}

/// What one plugin's decision does to the draft.
enum Step {
    Keep,
    Replace(DraftContent),
    Reject(String),
    Hold(String),
}

/// Why a plugin's decision cannot be used.
struct Failure {
    error: String,
    /// The circuit breaker refused the call (it did not run).
    disabled: bool,
}

impl From<String> for Failure {
    fn from(error: String) -> Self {
        Failure {
            error,
            disabled: false,
        }
    }
}

/// Calls one plugin and interprets its decision; `Err` is a failure to skip (or fail closed on).
fn decide(plugin: &LoadedPlugin, call: &HookCall, current: &DraftContent) -> Result<Step, Failure> {
    let decision = match plugin.call(call) {
        Ok(HookOutput::Decision(decision)) => decision,
        Ok(HookOutput::Done(_)) => return Ok(Step::Keep),
        Err(e) => {
            return Err(Failure {
                error: e.to_string(),
                disabled: matches!(e, CallError::Disabled { .. }),
            });
        }
    };
    let modification = match decision {
        Decision::Allow => return Ok(Step::Keep),
        Decision::Reject(reason) => return Ok(Step::Reject(reason)),
        Decision::Hold(reason) => return Ok(Step::Hold(reason)),
        Decision::Modify(m) => m,
    };
    let mut next = current.clone();
    if let Some(body) = modification.body {
        next.body = body;
    }
    if let Some(text) = modification.metadata {
        match metadata_from_text(&text) {
            Some(metadata) => next.metadata = metadata,
            None => {
                let error = "modify returned metadata that is not a JSON object".to_owned();
                plugin.record_failure(call.hook(), error.clone());
                return Err(error.into());
            }
        }
    }
    if let Err(e) = check_content(&next.body, &next.metadata) {
        let error = format!("modify returned an unacceptable message: {e}");
        plugin.record_failure(call.hook(), error.clone());
        return Err(error.into());
    }
    Ok(Step::Replace(next))
}
