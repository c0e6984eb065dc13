//! The hooks the server can call: their names, their arguments, and how a call reaches a component.
//!
//! Everything hook-specific is written once, in the table below, so adding a hook to the WIT means adding
//! one entry here (and one in the event table, `crate::events::table`, for the event that fires it). The
//! table generates the version-independent [`Hook`] and [`HookCall`] (in the current version's types), the
//! lookup and the calls of the current version's exports, and reading a call's arguments from a case file
//! ([`HookCall::from_case`]). Components built against older versions are called through `frozen`,
//! whose tables never change. `HookIndices` and `HookExports` pick the version a component was built
//! against; `on-timer`, the one export that is not a chat hook, sits beside them.

use super::bindings::WitVersion;
use super::bindings::types::{
    Ban, Conversation, Decision, Draft, EventContext, HeldMessage, Message, Participant, Presence,
    Reaction, Receipt, Role, TypingEvent, User,
};
use super::bindings::v0_1::exports::chathooks::plugin as v0_1_exports;
use super::bindings::v0_2::exports::chathooks::plugin as v0_2_exports;
use super::bindings::v0_3::exports::chathooks::plugin as v0_3_exports;
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

/// How a [`HookCall`] argument is passed to the generated bindings: records and lists by reference, enums
/// by value, options of references.
trait CallArg {
    /// The type the binding takes.
    type Arg<'a>
    where
        Self: 'a;
    /// The argument.
    fn arg(&self) -> Self::Arg<'_>;
}

/// Implements [`CallArg`] by reference for records.
macro_rules! by_reference {
    ($( $ty:ty ),* $(,)?) => {
        $( impl CallArg for $ty {
            type Arg<'a> = &'a $ty;
            fn arg(&self) -> &$ty {
                self
            }
        } )*
    };
}

by_reference!(
    Message,
    Conversation,
    Draft,
    Receipt,
    Reaction,
    Participant,
    User,
    Presence,
    Ban,
    HeldMessage
);

impl<T> CallArg for Vec<T> {
    type Arg<'a>
        = &'a [T]
    where
        T: 'a;
    fn arg(&self) -> &[T] {
        self
    }
}

impl CallArg for Role {
    type Arg<'a> = Role;
    fn arg(&self) -> Role {
        *self
    }
}

impl CallArg for Option<User> {
    type Arg<'a> = Option<&'a User>;
    fn arg(&self) -> Option<&User> {
        self.as_ref()
    }
}

impl CallArg for Option<String> {
    type Arg<'a> = Option<&'a str>;
    fn arg(&self) -> Option<&str> {
        self.as_deref()
    }
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

            /// The call of `hook` with its arguments read from a case file's `input` object (keys: the WIT
            /// parameter names in snake_case; see [`crate::cases::convert`] for each type's defaults).
            /// After-hooks get `context`.
            pub fn from_case(
                hook: Hook,
                input: &crate::cases::convert::CaseInput<'_>,
                context: EventContext,
            ) -> Result<HookCall, crate::cases::convert::InputError> {
                #[allow(unused_imports)]
                use crate::cases::convert::FromCase;
                Ok(match hook {
                    $( Hook::$bvariant => HookCall::$bvariant { $( $bfield: input.arg(stringify!($bfield))?, )* }, )*
                    $( Hook::$avariant => {
                        let _ = &context;
                        HookCall::$avariant { context, $( $afield: input.arg(stringify!($afield))?, )* }
                    } )*
                })
            }
        }
    };
}

/// Generates, for the exports of one version of the package (`$exports`, a module of generated
/// bindings), the module `$version` with its `Indices` (where each exported hook lives, found once per
/// plugin version) and its `Exports` (the bound functions of one instance). Used for the current version,
/// whose types [`HookCall`] carries; older versions are called through [`frozen`].
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
                                Some(g) => g.$bcall(store, $( CallArg::arg($bfield), )*).map(|d| Some(HookOutput::Decision(d))),
                                None => Ok(None),
                            },
                        )*
                        $(
                            HookCall::$avariant { context, $( $afield, )* } => match &self.$amod {
                                Some(g) => g.$acall(store, *context, $( CallArg::arg($afield), )*).map(|r| Some(HookOutput::Done(r))),
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
///
/// One entry per hook of the current version, in WIT order: the [`Hook`] variant, the export's module and
/// call names in the bindings, the WIT name, and the parameters after `context` (an after-hook's first
/// parameter, implied). The compiler holds the rest of the host to it: a new entry is a new [`Hook`] and
/// [`HookCall`] variant, so every `match` on them that must handle it fails to build until it does.
macro_rules! with_hook_table {
    ($macro:ident ! { $( $prefix:tt )* }) => {
        $macro! {
            $( $prefix )*

            before {
                BeforeMessageSent before_message_sent call_before_message_sent "before-message-sent"
                    { draft: Draft, conversation: Conversation }
                BeforeMessageUpdated before_message_updated call_before_message_updated "before-message-updated"
                    { current: Message, draft: Draft, conversation: Conversation }
            }
            after {
                AfterMessageSent after_message_sent call_after_message_sent "after-message-sent"
                    { message: Message, conversation: Conversation }
                AfterMessageUpdated after_message_updated call_after_message_updated "after-message-updated"
                    { message: Message, conversation: Conversation }
                AfterMessageDeleted after_message_deleted call_after_message_deleted "after-message-deleted"
                    { message: Message, conversation: Conversation }
                TypingStarted typing_started call_typing_started "typing-started"
                    { conversation: Conversation, events: Vec<TypingEvent> }
                AfterConversationCreated after_conversation_created call_after_conversation_created "after-conversation-created"
                    { conversation: Conversation }
                AfterConversationUpdated after_conversation_updated call_after_conversation_updated "after-conversation-updated"
                    { conversation: Conversation }
                AfterConversationDeleted after_conversation_deleted call_after_conversation_deleted "after-conversation-deleted"
                    { conversation: Conversation }
                AfterUsersAddedToConversation after_users_added_to_conversation call_after_users_added_to_conversation "after-users-added-to-conversation"
                    { conversation: Conversation, new_users: Vec<User> }
                AfterUsersRemovedFromConversation after_users_removed_from_conversation call_after_users_removed_from_conversation "after-users-removed-from-conversation"
                    { conversation: Conversation, old_users: Vec<User> }
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
                AfterUserPresenceChanged after_user_presence_changed call_after_user_presence_changed "after-user-presence-changed"
                    { user: User, presence: Presence }
                AfterUserBlocked after_user_blocked call_after_user_blocked "after-user-blocked"
                    { blocker: User, blocked: User }
                AfterUserUnblocked after_user_unblocked call_after_user_unblocked "after-user-unblocked"
                    { blocker: User, blocked: User }
                AfterParticipantRoleChanged after_participant_role_changed call_after_participant_role_changed "after-participant-role-changed"
                    { conversation: Conversation, participant: Participant, old_role: Role, changed_by: User }
                AfterMemberBanned after_member_banned call_after_member_banned "after-member-banned"
                    { conversation: Conversation, ban: Ban }
                AfterMemberUnbanned after_member_unbanned call_after_member_unbanned "after-member-unbanned"
                    { conversation: Conversation, ban: Ban, unbanned_by: User }
                AfterOwnerTransferred after_owner_transferred call_after_owner_transferred "after-owner-transferred"
                    { conversation: Conversation, old_owner: Option<User>, new_owner: User }
                AfterMessageHeld after_message_held call_after_message_held "after-message-held"
                    { held: HeldMessage, conversation: Conversation }
                AfterMessageApproved after_message_approved call_after_message_approved "after-message-approved"
                    { message: Message, conversation: Conversation, moderator: User }
                AfterMessageRejected after_message_rejected call_after_message_rejected "after-message-rejected"
                    { held: HeldMessage, conversation: Conversation, moderator: User, reason: Option<String> }
                AfterMessageDeliveredToAll after_message_delivered_to_all call_after_message_delivered_to_all "after-message-delivered-to-all"
                    { message: Message, conversation: Conversation }
                AfterMessageReadByAll after_message_read_by_all call_after_message_read_by_all "after-message-read-by-all"
                    { message: Message, conversation: Conversation }
            }
        }
    };
}

with_hook_table!(hook_kinds! {});
with_hook_table!(
    hook_exports! { exports_v0_3 crate::plugins::bindings::v0_3::exports::chathooks::plugin; }
);

mod frozen;
pub(crate) use frozen::exists_in;

/// Per plugin version: where its hooks live, in the version of the package it exports.
#[derive(Clone)]
pub(crate) enum HookIndices {
    /// A component built against 0.3.0.
    V0_3(exports_v0_3::Indices),
    /// A component built against 0.2.0.
    V0_2(frozen::v0_2::Indices),
    /// A component built against 0.1.0.
    V0_1(frozen::v0_1::Indices),
}

impl HookIndices {
    /// Look up each hook in `hooks` among the component's exports of `version`.
    pub(crate) fn new(
        pre: &InstancePre<PluginState>,
        version: WitVersion,
        hooks: HookSet,
    ) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V0_3 => HookIndices::V0_3(exports_v0_3::Indices::new(pre, hooks)?),
            WitVersion::V0_2 => HookIndices::V0_2(frozen::v0_2::Indices::new(pre, hooks)?),
            WitVersion::V0_1 => HookIndices::V0_1(frozen::v0_1::Indices::new(pre, hooks)?),
        })
    }

    /// Type-check and bind each hook's function in a fresh instance.
    pub(crate) fn load(
        &self,
        store: &mut Store<PluginState>,
        instance: &Instance,
    ) -> wasmtime::Result<HookExports> {
        Ok(match self {
            HookIndices::V0_3(i) => HookExports::V0_3(Box::new(i.load(store, instance)?)),
            HookIndices::V0_2(i) => HookExports::V0_2(i.load(store, instance)?),
            HookIndices::V0_1(i) => HookExports::V0_1(i.load(store, instance)?),
        })
    }
}

/// Per instance: the bound hook functions of the version its component exports.
pub(crate) enum HookExports {
    /// 0.3.0 exports (boxed: one slot per hook of the current table, many more than the old versions').
    V0_3(Box<exports_v0_3::Exports>),
    /// 0.2.0 exports.
    V0_2(frozen::v0_2::Exports),
    /// 0.1.0 exports.
    V0_1(frozen::v0_1::Exports),
}

impl HookExports {
    /// Call the hook `call` is for. `Ok(None)` means the instance does not export it.
    pub(crate) fn call(
        &self,
        store: &mut Store<PluginState>,
        call: &HookCall,
    ) -> wasmtime::Result<Option<HookOutput>> {
        match self {
            HookExports::V0_3(e) => e.call(store, call),
            HookExports::V0_2(e) => e.call(store, call),
            HookExports::V0_1(e) => e.call(store, call),
        }
    }
}

/// Where `on-timer` lives in a component, in the version of the package it exports (the one export that
/// is not a chat hook, so it is not in the table).
#[derive(Clone)]
pub(crate) enum TimerIndices {
    /// A component built against 0.3.0.
    V0_3(v0_3_exports::on_timer::GuestIndices),
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
            WitVersion::V0_3 => TimerIndices::V0_3(v0_3_exports::on_timer::GuestIndices::new(pre)?),
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
            TimerIndices::V0_3(i) => i.load(store, instance).map(TimerGuest::V0_3),
            TimerIndices::V0_2(i) => i.load(store, instance).map(TimerGuest::V0_2),
            TimerIndices::V0_1(i) => i.load(store, instance).map(TimerGuest::V0_1),
        };
        bound.map_err(|e| mismatch(TIMER_EXPORT, e))
    }
}

/// Per instance: the bound `on-timer` function.
#[derive(Clone)]
pub(crate) enum TimerGuest {
    /// 0.3.0.
    V0_3(v0_3_exports::on_timer::Guest),
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
            TimerGuest::V0_3(g) => g.call_on_timer(store, name, payload),
            TimerGuest::V0_2(g) => g.call_on_timer(store, name, payload),
            TimerGuest::V0_1(g) => g.call_on_timer(store, name, payload),
        }
    }
}
