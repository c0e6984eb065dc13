//! The hooks the server can call: their names, their arguments, and how a call reaches a component.
//!
//! Everything hook-specific is written once, in the table below, so adding a hook to the WIT means adding
//! one line here. The table generates the version-independent [`Hook`] and [`HookCall`], and for each
//! version of the package the server implements, the lookup and the calls of that version's exports
//! (and of `on-timer`, beside the table); [`HookIndices`] and [`HookExports`] pick the version a component was built
//! against.

use super::bindings::WitVersion;
use super::bindings::types::{
    Conversation, Decision, Draft, EventContext, Message, Participant, Reaction, Receipt,
    TypingEvent, User,
};
use super::bindings::v0_1::exports::chathooks::plugin as v0_1_exports;
use super::bindings::v0_2::exports::chathooks::plugin as v0_2_exports;
use super::inspect::TIMER_EXPORT;
use super::instance::PluginState;
use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

/// Whether a hook runs inline (and can change the outcome) or after the fact (durably, with retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Runs inside the request and returns a [`Decision`].
    Before,
    /// Runs from the outbox after the change is committed.
    After,
}

/// What a hook call returned.
#[derive(Debug, Clone)]
pub enum HookOutput {
    /// A before-hook's decision.
    Decision(Decision),
    /// An after-hook's result: `Err` carries the plugin's reason and asks for a retry.
    Done(Result<(), String>),
}

/// The set of hooks a plugin exports, as a bit set indexed by [`Hook`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookSet(u32);

impl HookSet {
    /// Whether `hook` is in the set.
    pub fn contains(self, hook: Hook) -> bool {
        self.0 & (1 << hook as u32) != 0
    }

    /// Add `hook` to the set.
    pub fn insert(&mut self, hook: Hook) {
        self.0 |= 1 << hook as u32;
    }

    /// The hooks in the set, in WIT order.
    pub fn iter(self) -> impl Iterator<Item = Hook> {
        Hook::ALL.iter().copied().filter(move |h| self.contains(*h))
    }

    /// Whether no hook is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// An exported hook whose function does not have the WIT's name or signature; raised when an instance binds
/// its hooks, and turned into [`super::LoadError::HookMismatch`] at load time.
#[derive(Debug, thiserror::Error)]
#[error("hook `{hook}` does not match the WIT: {message}")]
pub(crate) struct HookTypeMismatch {
    pub(crate) hook: &'static str,
    pub(crate) message: String,
}

fn mismatch(hook: &'static str, err: wasmtime::Error) -> wasmtime::Error {
    wasmtime::Error::new(HookTypeMismatch {
        hook,
        message: format!("{err:#}"),
    })
}

/// Generates what every version shares: [`Hook`] and [`HookCall`].
macro_rules! hook_kinds {
    (
        before { $( $bvariant:ident $bmod:ident $bcall:ident $bname:literal { $( $bfield:ident : $bty:ty ),* } )* }
        after { $( $avariant:ident $amod:ident $acall:ident $aname:literal { $( $afield:ident : $aty:ty ),* } )* }
    ) => {
        /// One hook of the WIT package: one exported interface with one function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Hook {
            $( #[doc = concat!("`", $bname, "`")] $bvariant, )*
            $( #[doc = concat!("`", $aname, "`")] $avariant, )*
        }

        impl Hook {
            /// Every hook, in WIT order (before-hooks first).
            pub const ALL: &'static [Hook] = &[ $( Hook::$bvariant, )* $( Hook::$avariant, )* ];

            /// The WIT interface (and function) name, e.g. `after-message-sent`.
            pub fn name(self) -> &'static str {
                match self {
                    $( Hook::$bvariant => $bname, )*
                    $( Hook::$avariant => $aname, )*
                }
            }

            /// Whether the hook runs inline or from the outbox.
            pub fn kind(self) -> HookKind {
                match self {
                    $( Hook::$bvariant => HookKind::Before, )*
                    $( Hook::$avariant => HookKind::After, )*
                }
            }

            /// The hook named `name` (the WIT interface name), if there is one.
            pub fn from_name(name: &str) -> Option<Hook> {
                Hook::ALL.iter().copied().find(|h| h.name() == name)
            }
        }

        /// A hook call with its arguments, in the WIT types. After-hooks carry the [`EventContext`] the
        /// plugin uses to deduplicate.
        #[derive(Debug, Clone)]
        pub enum HookCall {
            $(
                #[doc = concat!("Arguments of `", $bname, "`.")]
                $bvariant { $( #[allow(missing_docs)] $bfield: $bty, )* },
            )*
            $(
                #[doc = concat!("Arguments of `", $aname, "`.")]
                $avariant { #[allow(missing_docs)] context: EventContext, $( #[allow(missing_docs)] $afield: $aty, )* },
            )*
        }

        impl HookCall {
            /// Which hook this call is for.
            pub fn hook(&self) -> Hook {
                match self {
                    $( HookCall::$bvariant { .. } => Hook::$bvariant, )*
                    $( HookCall::$avariant { .. } => Hook::$avariant, )*
                }
            }
        }
    };
}

/// Generates, for the exports of one version of the package (`$exports`, a module of generated
/// bindings), the module `$version` with its `Indices` (where each exported hook lives, found once per
/// plugin version) and its `Exports` (the bound functions of one instance). The argument and result types
/// are the same in every version (the bindings share `types`), so [`HookCall`] serves them all.
macro_rules! hook_exports {
    (
        $version:ident $exports:path;
        before { $( $bvariant:ident $bmod:ident $bcall:ident $bname:literal { $( $bfield:ident : $bty:ty ),* } )* }
        after { $( $avariant:ident $amod:ident $acall:ident $aname:literal { $( $afield:ident : $aty:ty ),* } )* }
    ) => {
        #[doc = concat!("The hook exports of `", stringify!($exports), "`.")]
        mod $version {
            use super::*;
            use $exports as exports;

            /// Per plugin version: where each exported hook lives in the component.
            #[derive(Clone, Default)]
            pub(crate) struct Indices {
                $( $bmod: Option<exports::$bmod::GuestIndices>, )*
                $( $amod: Option<exports::$amod::GuestIndices>, )*
            }

            impl Indices {
                /// Look up each hook in `hooks` in the component.
                pub(crate) fn new(pre: &InstancePre<PluginState>, hooks: HookSet) -> wasmtime::Result<Self> {
                    let mut indices = Indices::default();
                    $( if hooks.contains(Hook::$bvariant) { indices.$bmod = Some(exports::$bmod::GuestIndices::new(pre)?); } )*
                    $( if hooks.contains(Hook::$avariant) { indices.$amod = Some(exports::$amod::GuestIndices::new(pre)?); } )*
                    Ok(indices)
                }

                /// Type-check and bind each hook's function in a fresh instance.
                pub(crate) fn load(&self, store: &mut Store<PluginState>, instance: &Instance) -> wasmtime::Result<Exports> {
                    Ok(Exports {
                        $( $bmod: self.$bmod.as_ref().map(|i| i.load(&mut *store, instance).map_err(|e| mismatch($bname, e))).transpose()?, )*
                        $( $amod: self.$amod.as_ref().map(|i| i.load(&mut *store, instance).map_err(|e| mismatch($aname, e))).transpose()?, )*
                    })
                }
            }

            /// Per instance: the bound hook functions, so a call does no name lookups.
            pub(crate) struct Exports {
                $( $bmod: Option<exports::$bmod::Guest>, )*
                $( $amod: Option<exports::$amod::Guest>, )*
            }

            impl Exports {
                /// Call the hook `call` is for. `Ok(None)` means the instance does not export it.
                pub(crate) fn call(&self, store: &mut Store<PluginState>, call: &HookCall) -> wasmtime::Result<Option<HookOutput>> {
                    match call {
                        $(
                            HookCall::$bvariant { $( $bfield, )* } => match &self.$bmod {
                                Some(g) => g.$bcall(store, $( $bfield, )*).map(|d| Some(HookOutput::Decision(d))),
                                None => Ok(None),
                            },
                        )*
                        $(
                            HookCall::$avariant { context, $( $afield, )* } => match &self.$amod {
                                Some(g) => g.$acall(store, *context, $( $afield, )*).map(|r| Some(HookOutput::Done(r))),
                                None => Ok(None),
                            },
                        )*
                    }
                }
            }
        }
    };
}

/// Hands the table of hooks (below) to `$macro`, after the tokens `$prefix`.
macro_rules! with_hook_table {
    ($macro:ident ! { $( $prefix:tt )* }) => {
        $macro! {
            $( $prefix )*

            before {
                BeforeMessageSent before_message_sent call_before_message_sent "before-message-sent"
                    { draft: Draft, conversation: Conversation, participants: Vec<Participant> }
                BeforeMessageUpdated before_message_updated call_before_message_updated "before-message-updated"
                    { current: Message, draft: Draft, conversation: Conversation, participants: Vec<Participant> }
            }
            after {
                AfterMessageSent after_message_sent call_after_message_sent "after-message-sent"
                    { message: Message, conversation: Conversation, participants: Vec<Participant> }
                AfterMessageUpdated after_message_updated call_after_message_updated "after-message-updated"
                    { message: Message, conversation: Conversation, participants: Vec<Participant> }
                AfterMessageDeleted after_message_deleted call_after_message_deleted "after-message-deleted"
                    { message: Message, conversation: Conversation, participants: Vec<Participant> }
                TypingStarted typing_started call_typing_started "typing-started"
                    { conversation: Conversation, participants: Vec<Participant>, events: Vec<TypingEvent> }
                AfterConversationCreated after_conversation_created call_after_conversation_created "after-conversation-created"
                    { conversation: Conversation, participants: Vec<Participant> }
                AfterConversationUpdated after_conversation_updated call_after_conversation_updated "after-conversation-updated"
                    { conversation: Conversation, participants: Vec<Participant> }
                AfterConversationDeleted after_conversation_deleted call_after_conversation_deleted "after-conversation-deleted"
                    { conversation: Conversation, participants: Vec<Participant> }
                AfterUsersAddedToConversation after_users_added_to_conversation call_after_users_added_to_conversation "after-users-added-to-conversation"
                    { conversation: Conversation, participants: Vec<Participant>, new_users: Vec<User> }
                AfterUsersRemovedFromConversation after_users_removed_from_conversation call_after_users_removed_from_conversation "after-users-removed-from-conversation"
                    { conversation: Conversation, participants: Vec<Participant>, old_users: Vec<User> }
                AfterMessageDelivered after_message_delivered call_after_message_delivered "after-message-delivered"
                    { message: Message, conversation: Conversation, receipt: Receipt }
                AfterMessageRead after_message_read call_after_message_read "after-message-read"
                    { message: Message, conversation: Conversation, receipt: Receipt }
                AfterReactionAdded after_reaction_added call_after_reaction_added "after-reaction-added"
                    { message: Message, conversation: Conversation, reaction: Reaction }
                AfterReactionRemoved after_reaction_removed call_after_reaction_removed "after-reaction-removed"
                    { message: Message, conversation: Conversation, reaction: Reaction }
                AfterUserMentioned after_user_mentioned call_after_user_mentioned "after-user-mentioned"
                    { message: Message, conversation: Conversation, mentioned_users: Vec<User> }
            }
        }
    };
}

with_hook_table!(hook_kinds! {});
with_hook_table!(
    hook_exports! { exports_v0_2 crate::plugins::bindings::v0_2::exports::chathooks::plugin; }
);
with_hook_table!(
    hook_exports! { exports_v0_1 crate::plugins::bindings::v0_1::exports::chathooks::plugin; }
);

/// Per plugin version: where its hooks live, in the version of the package it exports.
#[derive(Clone)]
pub(crate) enum HookIndices {
    /// A component built against 0.2.0.
    V0_2(exports_v0_2::Indices),
    /// A component built against 0.1.0.
    V0_1(exports_v0_1::Indices),
}

impl HookIndices {
    /// Look up each hook in `hooks` among the component's exports of `version`.
    pub(crate) fn new(
        pre: &InstancePre<PluginState>,
        version: WitVersion,
        hooks: HookSet,
    ) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V0_2 => HookIndices::V0_2(exports_v0_2::Indices::new(pre, hooks)?),
            WitVersion::V0_1 => HookIndices::V0_1(exports_v0_1::Indices::new(pre, hooks)?),
        })
    }

    /// Type-check and bind each hook's function in a fresh instance.
    pub(crate) fn load(
        &self,
        store: &mut Store<PluginState>,
        instance: &Instance,
    ) -> wasmtime::Result<HookExports> {
        Ok(match self {
            HookIndices::V0_2(i) => HookExports::V0_2(i.load(store, instance)?),
            HookIndices::V0_1(i) => HookExports::V0_1(i.load(store, instance)?),
        })
    }
}

/// Per instance: the bound hook functions of the version its component exports.
pub(crate) enum HookExports {
    /// 0.2.0 exports.
    V0_2(exports_v0_2::Exports),
    /// 0.1.0 exports.
    V0_1(exports_v0_1::Exports),
}

impl HookExports {
    /// Call the hook `call` is for. `Ok(None)` means the instance does not export it.
    pub(crate) fn call(
        &self,
        store: &mut Store<PluginState>,
        call: &HookCall,
    ) -> wasmtime::Result<Option<HookOutput>> {
        match self {
            HookExports::V0_2(e) => e.call(store, call),
            HookExports::V0_1(e) => e.call(store, call),
        }
    }
}

/// Where `on-timer` lives in a component, in the version of the package it exports (the one export that
/// is not a chat hook, so it is not in the table).
#[derive(Clone)]
pub(crate) enum TimerIndices {
    /// A component built against 0.2.0.
    V0_2(v0_2_exports::on_timer::GuestIndices),
    /// A component built against 0.1.0.
    V0_1(v0_1_exports::on_timer::GuestIndices),
}

impl TimerIndices {
    /// Look up `on-timer` among the component's exports of `version`.
    pub(crate) fn new(
        pre: &InstancePre<PluginState>,
        version: WitVersion,
    ) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V0_2 => TimerIndices::V0_2(v0_2_exports::on_timer::GuestIndices::new(pre)?),
            WitVersion::V0_1 => TimerIndices::V0_1(v0_1_exports::on_timer::GuestIndices::new(pre)?),
        })
    }

    /// Type-check and bind `on-timer` in a fresh instance.
    pub(crate) fn load(
        &self,
        store: &mut Store<PluginState>,
        instance: &Instance,
    ) -> wasmtime::Result<TimerGuest> {
        let bound = match self {
            TimerIndices::V0_2(i) => i.load(store, instance).map(TimerGuest::V0_2),
            TimerIndices::V0_1(i) => i.load(store, instance).map(TimerGuest::V0_1),
        };
        bound.map_err(|e| mismatch(TIMER_EXPORT, e))
    }
}

/// Per instance: the bound `on-timer` function.
#[derive(Clone)]
pub(crate) enum TimerGuest {
    /// 0.2.0.
    V0_2(v0_2_exports::on_timer::Guest),
    /// 0.1.0.
    V0_1(v0_1_exports::on_timer::Guest),
}

impl TimerGuest {
    /// Call `on-timer(name, payload)`.
    pub(crate) fn call_on_timer(
        &self,
        store: &mut Store<PluginState>,
        name: &str,
        payload: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            TimerGuest::V0_2(g) => g.call_on_timer(store, name, payload),
            TimerGuest::V0_1(g) => g.call_on_timer(store, name, payload),
        }
    }
}
