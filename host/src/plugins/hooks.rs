//! The hooks the server can call: their names, their arguments, and how a call reaches a component.
//!
//! Everything hook-specific is written once, in the table at the bottom of this file, so adding a hook to
//! the WIT means adding one line here.

use super::bindings::hooks;
use super::bindings::types::{
    Conversation, Decision, Draft, EventContext, Message, Participant, Reaction, Receipt,
    TypingEvent, User,
};
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

macro_rules! hook_table {
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

        /// Per plugin version: where each exported hook lives in the component, found once at load time.
        #[derive(Clone, Default)]
        pub(crate) struct HookIndices {
            $( $bmod: Option<hooks::$bmod::GuestIndices>, )*
            $( $amod: Option<hooks::$amod::GuestIndices>, )*
        }

        impl HookIndices {
            /// Look up each hook in `hooks` in the component.
            pub(crate) fn new(pre: &InstancePre<PluginState>, hooks: HookSet) -> wasmtime::Result<Self> {
                let mut indices = HookIndices::default();
                $( if hooks.contains(Hook::$bvariant) { indices.$bmod = Some(hooks::$bmod::GuestIndices::new(pre)?); } )*
                $( if hooks.contains(Hook::$avariant) { indices.$amod = Some(hooks::$amod::GuestIndices::new(pre)?); } )*
                Ok(indices)
            }

            /// Type-check and bind each hook's function in a fresh instance.
            pub(crate) fn load(&self, store: &mut Store<PluginState>, instance: &Instance) -> wasmtime::Result<HookExports> {
                Ok(HookExports {
                    $( $bmod: self.$bmod.as_ref().map(|i| i.load(&mut *store, instance).map_err(|e| mismatch($bname, e))).transpose()?, )*
                    $( $amod: self.$amod.as_ref().map(|i| i.load(&mut *store, instance).map_err(|e| mismatch($aname, e))).transpose()?, )*
                })
            }
        }

        /// Per instance: the bound hook functions, so a call does no name lookups.
        pub(crate) struct HookExports {
            $( $bmod: Option<hooks::$bmod::Guest>, )*
            $( $amod: Option<hooks::$amod::Guest>, )*
        }

        impl HookExports {
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
    };
}

hook_table! {
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
