//! The server's side of plugin powers: [`ServerServices`] carries out what plugins ask through the
//! `chat`, `events`, `http`, `push` and `scheduler` interfaces, on the real chat.
//!
//! ## Overview
//! The host interfaces (`plugins/host/*.rs`) check grants and arguments; the calls that pass arrive here,
//! on the plugin call's blocking thread:
//! - chat ([`crate::chat::bots`]): the bot user `bot.<plugin>` is created on first use; posts go through
//!   [`Chat::send_blocking`], the very operation behind `POST /v1/conversations/{id}/messages`, with
//!   origin plugin and depth, so before-hooks, events, after-hooks and the loop guard all apply. It runs
//!   synchronously on the calling thread: no async runtime is involved, so nothing can deadlock on it,
//!   and no SQLite lock is held by the caller (after-hooks run outside transactions; before-hooks run
//!   before the operation's transaction).
//! - events: published to the live hub with the conversation's participants (or the one user) as the
//!   audience, live only.
//! - http: [`http::HttpClient`] (spawned onto the runtime, waited for on a channel).
//! - push: [`push::Pusher`].
//! - scheduler: rows in `plugin_timers`, fired by [`scheduler::Scheduler`].
//!
//! ## Layout
//! [`hmac`] signs gateway requests; [`http`], [`push`], [`scheduler`] as above; [`tls`]: what the HTTP
//! client trusts and how a refused certificate reads.

pub mod hmac;
pub mod http;
pub mod push;
pub mod scheduler;
pub mod tls;

use crate::chat::{Chat, ChatError, SendMessage};
use crate::events::to_wit;
use crate::live::LiveEvent;
use crate::model::{Origin, User};
use crate::plugins::bindings::types::{
    Conversation as WitConversation, Message as WitMessage, Participant as WitParticipant,
};
use crate::plugins::host::chat::bot_id;
use crate::plugins::powers::{
    BotPost, CustomEvent, EventTarget, HostServices, HttpFailure, InboundResponse, OutboundRequest,
    PowerError, PushNotification, TimerSpec,
};
use crate::store::{StoreError, ids::now_ms};

use self::http::HttpClient;
use self::push::Pusher;
use self::scheduler::SchedulerHandle;

/// Carries out plugin powers on the server's chat.
#[derive(Debug, Clone)]
pub struct ServerServices {
    chat: Chat,
    http: HttpClient,
    pusher: Pusher,
    scheduler: SchedulerHandle,
}

impl ServerServices {
    /// Services over `chat`, making HTTP requests with `http`, pushing with `pusher` and waking the
    /// timer loop through `scheduler`.
    pub fn new(chat: Chat, http: HttpClient, pusher: Pusher, scheduler: SchedulerHandle) -> Self {
        ServerServices {
            chat,
            http,
            pusher,
            scheduler,
        }
    }

    /// The bot user of `plugin`, created the first time.
    fn bot(&self, plugin: &str) -> Result<User, PowerError> {
        self.chat
            .bot_user_blocking(&bot_id(plugin), plugin)
            .map_err(|e| match e {
                ChatError::Invalid { message, .. } => PowerError::Denied(message),
                other => chat_error(other),
            })
    }
}

fn store_error(e: StoreError) -> PowerError {
    match e {
        StoreError::NotFound { what, id } => PowerError::NotFound(format!("{what} {id}")),
        other => PowerError::Failed(other.to_string()),
    }
}

fn chat_error(e: ChatError) -> PowerError {
    match e {
        ChatError::NotFound { what, id } => PowerError::NotFound(format!(
            "{what} {id} (the bot must be a participant: join it first)"
        )),
        ChatError::Forbidden(m) => PowerError::Denied(m),
        e @ (ChatError::Banned { .. } | ChatError::Blocked { .. }) => {
            PowerError::Denied(e.to_string())
        }
        ChatError::Invalid { field, message } => {
            PowerError::Rejected(format!("{field}: {message}"))
        }
        ChatError::Rejected { plugin, reason } => {
            PowerError::Rejected(format!("rejected by {plugin}: {reason}"))
        }
        ChatError::Held { held } => PowerError::Rejected(format!(
            "held for review by {} ({}); it is published if a moderator approves it",
            held.held_by, held.reason
        )),
        other => PowerError::Failed(other.to_string()),
    }
}

impl HostServices for ServerServices {
    fn post_message(&self, post: BotPost) -> Result<WitMessage, PowerError> {
        let bot = self.bot(&post.plugin)?;
        // A reply names its parent only; it goes to the parent's conversation.
        let conversation_id = match &post.parent_id {
            Some(parent) => self
                .chat
                .conversation_of_message_blocking(parent)
                .map_err(chat_error)?,
            None => post.conversation_id.clone(),
        };
        let message = self
            .chat
            .send_blocking(
                &bot,
                &conversation_id,
                SendMessage {
                    body: post.body,
                    metadata: post.metadata,
                    client_id: None,
                    parent_id: post.parent_id,
                },
                Origin::Plugin {
                    name: post.plugin,
                    depth: post.depth,
                },
            )
            .map_err(chat_error)?;
        Ok(to_wit::message(&message))
    }

    fn join_conversation(&self, plugin: &str, conversation_id: &str) -> Result<(), PowerError> {
        let bot = self.bot(plugin)?;
        self.chat
            .join_bot_blocking(&bot, conversation_id)
            .map_err(chat_error)
    }

    fn conversation(
        &self,
        _plugin: &str,
        conversation_id: &str,
    ) -> Result<WitConversation, PowerError> {
        let conversation = self
            .chat
            .conversation_blocking(conversation_id)
            .map_err(chat_error)?;
        Ok(to_wit::conversation(&conversation))
    }

    fn recent_messages(
        &self,
        _plugin: &str,
        conversation_id: &str,
        limit: u32,
    ) -> Result<Vec<WitMessage>, PowerError> {
        let messages = self
            .chat
            .recent_messages_blocking(conversation_id, limit)
            .map_err(chat_error)?;
        Ok(messages.iter().map(to_wit::message).collect())
    }

    fn participants(
        &self,
        _plugin: &str,
        conversation_id: &str,
    ) -> Result<Vec<WitParticipant>, PowerError> {
        let participants = self
            .chat
            .participants_blocking(conversation_id)
            .map_err(chat_error)?;
        Ok(participants.iter().map(to_wit::participant).collect())
    }

    fn send_event(&self, event: CustomEvent) -> Result<(), PowerError> {
        let (conversation_id, audience) = match &event.target {
            EventTarget::Conversation(id) => {
                let audience = self.chat.audience_blocking(id).map_err(chat_error)?;
                (Some(id.clone()), audience)
            }
            EventTarget::User(id) => {
                self.chat.require_user_blocking(id).map_err(chat_error)?;
                (None, vec![id.clone()])
            }
        };
        self.chat.hub().publish(LiveEvent {
            id: 0,
            kind: event.kind,
            conversation_id,
            audience,
            payload: event.data,
            created_at: now_ms(),
        });
        Ok(())
    }

    fn http(&self, request: OutboundRequest) -> Result<InboundResponse, HttpFailure> {
        self.http.send_blocking(request)
    }

    fn push(&self, notification: PushNotification) -> Result<(), PowerError> {
        self.pusher.send(notification)
    }

    fn set_timer(&self, timer: TimerSpec) -> Result<(), PowerError> {
        // On the timer loop's clock, which decides when it is due.
        let now = self.scheduler.clock().now_ms();
        let delay = i64::try_from(timer.delay_ms).unwrap_or(i64::MAX);
        self.chat
            .db()
            .write(|tx| {
                tx.set_timer(
                    &timer.plugin,
                    &timer.name,
                    now.saturating_add(delay),
                    timer.interval_ms,
                    &timer.payload,
                    now,
                )
            })
            .map_err(store_error)?;
        self.scheduler.wake();
        Ok(())
    }

    fn cancel_timer(&self, plugin: &str, name: &str) -> Result<bool, PowerError> {
        self.chat
            .db()
            .write(|tx| tx.cancel_timer(plugin, name))
            .map_err(store_error)
    }
}
