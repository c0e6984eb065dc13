//! Calling components built against the frozen versions 0.2.0 and 0.1.0 (whose hook exports take the same
//! 0.2.0 records): each [`HookCall`], built in the current types, is translated by
//! [`crate::plugins::downgrade`] at call time, and their decisions translated back.
//!
//! Their hooks still take `participants` and a `conversation` that lists participant and admin ids, which
//! 0.3.0 stopped lowering into every call; they are read for the call through the plugin's services
//! ([`PluginState::old_hook_participants`]), so only old components pay for them. A conversation that no
//! longer exists (`after-conversation-deleted`) has no participants to read, and an old component gets
//! empty lists for it. The tables here never change: hooks added since (0.3.0's twelve) do not exist in
//! these versions, so an old component never exports them and is never called with them.

use super::*;
use crate::plugins::downgrade as d;

/// Generates the module `$version` with `Indices` and `Exports` for the exports of one frozen version: each
/// entry names the [`Hook`], its export module, its WIT name, and how a matching [`HookCall`] is made into
/// the old call (`$g`: the bound function, `$st`: the store).
macro_rules! frozen_exports {
    (
        $version:ident $exports:path;
        $( $variant:ident $module:ident $name:literal ($g:ident, $st:ident) $pat:pat => $body:expr; )*
    ) => {
        #[doc = concat!("The hook exports of `", stringify!($exports), "`.")]
        pub(crate) mod $version {
            use super::*;
            use $exports as exports;

            /// Per plugin version: where each exported hook lives in the component.
            #[derive(Clone, Default)]
            pub(crate) struct Indices {
                $( $module: Option<exports::$module::GuestIndices>, )*
            }

            impl Indices {
                /// Look up each hook in `hooks` in the component.
                pub(crate) fn new(pre: &InstancePre<PluginState>, hooks: HookSet) -> wasmtime::Result<Self> {
                    let mut indices = Indices::default();
                    $( if hooks.contains(Hook::$variant) { indices.$module = Some(exports::$module::GuestIndices::new(pre)?); } )*
                    Ok(indices)
                }

                /// Type-check and bind each hook's function in a fresh instance.
                pub(crate) fn load(&self, store: &mut Store<PluginState>, instance: &Instance) -> wasmtime::Result<Exports> {
                    Ok(Exports {
                        $( $module: self.$module.as_ref().map(|i| i.load(&mut *store, instance).map_err(|e| mismatch($name, e))).transpose()?, )*
                    })
                }
            }

            /// Per instance: the bound hook functions.
            pub(crate) struct Exports {
                $( $module: Option<exports::$module::Guest>, )*
            }

            impl Exports {
                /// Call the hook `call` is for, translated. `Ok(None)` means the instance does not export it
                /// (hooks added since this version never are).
                pub(crate) fn call(&self, store: &mut Store<PluginState>, call: &HookCall) -> wasmtime::Result<Option<HookOutput>> {
                    #[allow(unreachable_patterns)]
                    match call {
                        $( $pat => match &self.$module {
                            Some($g) => {
                                let $st = &mut *store;
                                $body.map(Some)
                            }
                            None => Ok(None),
                        }, )*
                        _ => Ok(None),
                    }
                }
            }
        }
    };
}

/// Hands the frozen table of the 0.2.0 (and 0.1.0) hooks to [`frozen_exports`].
macro_rules! with_frozen_table {
    ($version:ident $exports:path) => {
        frozen_exports! {
            $version $exports;

            BeforeMessageSent before_message_sent "before-message-sent" (g, st)
                HookCall::BeforeMessageSent { draft, conversation } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_before_message_sent(st, &d::draft(draft), &d::conversation(conversation, &ps), &d::participants(&ps))
                        .map(|x| HookOutput::Decision(d::decision(x)))
                };
            BeforeMessageUpdated before_message_updated "before-message-updated" (g, st)
                HookCall::BeforeMessageUpdated { current, draft, conversation } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_before_message_updated(st, &d::message(current), &d::draft(draft), &d::conversation(conversation, &ps), &d::participants(&ps))
                        .map(|x| HookOutput::Decision(d::decision(x)))
                };
            AfterMessageSent after_message_sent "after-message-sent" (g, st)
                HookCall::AfterMessageSent { context, message, conversation } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_message_sent(st, d::context(context), &d::message(message), &d::conversation(conversation, &ps), &d::participants(&ps))
                        .map(HookOutput::Done)
                };
            AfterMessageUpdated after_message_updated "after-message-updated" (g, st)
                HookCall::AfterMessageUpdated { context, message, conversation } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_message_updated(st, d::context(context), &d::message(message), &d::conversation(conversation, &ps), &d::participants(&ps))
                        .map(HookOutput::Done)
                };
            AfterMessageDeleted after_message_deleted "after-message-deleted" (g, st)
                HookCall::AfterMessageDeleted { context, message, conversation } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_message_deleted(st, d::context(context), &d::message(message), &d::conversation(conversation, &ps), &d::participants(&ps))
                        .map(HookOutput::Done)
                };
            TypingStarted typing_started "typing-started" (g, st)
                HookCall::TypingStarted { context, conversation, events } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_typing_started(st, d::context(context), &d::conversation(conversation, &ps), &d::participants(&ps), &d::typing_events(events))
                        .map(HookOutput::Done)
                };
            AfterConversationCreated after_conversation_created "after-conversation-created" (g, st)
                HookCall::AfterConversationCreated { context, conversation } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_conversation_created(st, d::context(context), &d::conversation(conversation, &ps), &d::participants(&ps))
                        .map(HookOutput::Done)
                };
            AfterConversationUpdated after_conversation_updated "after-conversation-updated" (g, st)
                HookCall::AfterConversationUpdated { context, conversation } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_conversation_updated(st, d::context(context), &d::conversation(conversation, &ps), &d::participants(&ps))
                        .map(HookOutput::Done)
                };
            AfterConversationDeleted after_conversation_deleted "after-conversation-deleted" (g, st)
                HookCall::AfterConversationDeleted { context, conversation } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_conversation_deleted(st, d::context(context), &d::conversation(conversation, &ps), &d::participants(&ps))
                        .map(HookOutput::Done)
                };
            AfterUsersAddedToConversation after_users_added_to_conversation "after-users-added-to-conversation" (g, st)
                HookCall::AfterUsersAddedToConversation { context, conversation, new_users } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_users_added_to_conversation(st, d::context(context), &d::conversation(conversation, &ps), &d::participants(&ps), &d::users(new_users))
                        .map(HookOutput::Done)
                };
            AfterUsersRemovedFromConversation after_users_removed_from_conversation "after-users-removed-from-conversation" (g, st)
                HookCall::AfterUsersRemovedFromConversation { context, conversation, old_users } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_users_removed_from_conversation(st, d::context(context), &d::conversation(conversation, &ps), &d::participants(&ps), &d::users(old_users))
                        .map(HookOutput::Done)
                };
            AfterMessageDelivered after_message_delivered "after-message-delivered" (g, st)
                HookCall::AfterMessageDelivered { context, message, conversation, receipt } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_message_delivered(st, d::context(context), &d::message(message), &d::conversation(conversation, &ps), &d::receipt(receipt))
                        .map(HookOutput::Done)
                };
            AfterMessageRead after_message_read "after-message-read" (g, st)
                HookCall::AfterMessageRead { context, message, conversation, receipt } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_message_read(st, d::context(context), &d::message(message), &d::conversation(conversation, &ps), &d::receipt(receipt))
                        .map(HookOutput::Done)
                };
            AfterReactionAdded after_reaction_added "after-reaction-added" (g, st)
                HookCall::AfterReactionAdded { context, message, conversation, reaction } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_reaction_added(st, d::context(context), &d::message(message), &d::conversation(conversation, &ps), &d::reaction(reaction))
                        .map(HookOutput::Done)
                };
            AfterReactionRemoved after_reaction_removed "after-reaction-removed" (g, st)
                HookCall::AfterReactionRemoved { context, message, conversation, reaction } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_reaction_removed(st, d::context(context), &d::message(message), &d::conversation(conversation, &ps), &d::reaction(reaction))
                        .map(HookOutput::Done)
                };
            AfterUserMentioned after_user_mentioned "after-user-mentioned" (g, st)
                HookCall::AfterUserMentioned { context, message, conversation, mentioned_users } => {
                    let ps = st.data_mut().old_hook_participants(&conversation.id);
                    g.call_after_user_mentioned(st, d::context(context), &d::message(message), &d::conversation(conversation, &ps), &d::users(mentioned_users))
                        .map(HookOutput::Done)
                };
        }
    };
}

with_frozen_table!(v0_2 crate::plugins::bindings::v0_2::exports::chathooks::plugin);
with_frozen_table!(v0_1 crate::plugins::bindings::v0_1::exports::chathooks::plugin);

/// The hooks a component built against `version` can export: the current table for the current
/// version, the first sixteen (those of the frozen table) for 0.2.0 and 0.1.0.
pub(crate) fn exists_in(hook: Hook, version: WitVersion) -> bool {
    match version {
        WitVersion::V0_3 => true,
        WitVersion::V0_2 | WitVersion::V0_1 => hook <= Hook::AfterUserMentioned,
    }
}
