//! [`RecordingServices`]: powers that only record what a plugin asked for, for the harness and
//! `chathooks test`, so case files can assert bot posts, custom events, HTTP calls, pushes and timers.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::*;
/// One thing a plugin did through its powers, as [`RecordingServices`] keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "power", rename_all = "snake_case")]
pub enum Recorded {
    /// A bot post.
    Post(BotPost),
    /// The bot joined a conversation.
    Join {
        /// The plugin.
        plugin: String,
        /// The conversation.
        conversation_id: String,
    },
    /// A custom event.
    Event(CustomEvent),
    /// An HTTP request.
    Http(OutboundRequest),
    /// A push notification.
    Push(PushNotification),
    /// A timer set.
    Timer(TimerSpec),
    /// A timer cancelled.
    CancelTimer {
        /// The plugin.
        plugin: String,
        /// The timer.
        name: String,
    },
}

/// Services for tests and `chathooks test`: they record every call, answer HTTP with a canned
/// response (200 and an empty body unless set), and give posted messages ids `m1`, `m2`, ...
#[derive(Debug, Default)]
pub struct RecordingServices {
    calls: Mutex<Vec<Recorded>>,
    http_response: Mutex<Option<InboundResponse>>,
    timers: Mutex<BTreeMap<(String, String), TimerSpec>>,
    /// What `chat.participants` answers, per conversation (a case's `participants`).
    participants: Mutex<BTreeMap<String, Vec<Participant>>>,
}

impl RecordingServices {
    /// Everything recorded since the last call, oldest first.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Sets what HTTP requests get back (`None`: 200 with an empty body).
    pub fn set_http_response(&self, response: Option<InboundResponse>) {
        *self
            .http_response
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = response;
    }

    /// Sets what `chat.participants` answers for `conversation_id` (and what a component built against
    /// 0.2.0 or older gets as its `participants` argument).
    pub fn set_participants(&self, conversation_id: &str, participants: Vec<Participant>) {
        self.participants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(conversation_id.to_owned(), participants);
    }

    /// Forgets the recorded calls, timers and participants (between cases).
    pub fn reset(&self) {
        self.take();
        self.participants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.timers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.set_http_response(None);
    }

    fn record(&self, call: Recorded) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }

    fn count_posts(&self) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|c| matches!(c, Recorded::Post(_)))
            .count()
    }
}

fn recorded_conversation(id: &str) -> Conversation {
    Conversation {
        id: id.to_owned(),
        title: None,
        owner_id: None,
        participant_count: 0,
        distinct_by_participants: false,
        metadata: "{}".into(),
        last_message_id: None,
        created_at: 0,
        updated_at: 0,
    }
}

impl HostServices for RecordingServices {
    fn post_message(&self, post: BotPost) -> Result<Message, PowerError> {
        use crate::plugins::bindings::types::{Origin, PluginOrigin, User};
        let n = self.count_posts() + 1;
        let message = Message {
            id: format!("m{n}"),
            conversation_id: post.conversation_id.clone(),
            sender: User {
                id: format!("bot.{}", post.plugin),
                name: post.plugin.clone(),
                metadata: "{}".into(),
            },
            body: post.body.clone(),
            metadata: post.metadata.to_string(),
            seq: n as u64,
            created_at: 0,
            edited_at: None,
            deleted: false,
            origin: Origin::Plugin(PluginOrigin {
                name: post.plugin.clone(),
                depth: post.depth,
            }),
            parent_id: None,
            reply_count: 0,
            last_reply_at: None,
        };
        self.record(Recorded::Post(post));
        Ok(message)
    }

    fn join_conversation(&self, plugin: &str, conversation_id: &str) -> Result<(), PowerError> {
        self.record(Recorded::Join {
            plugin: plugin.to_owned(),
            conversation_id: conversation_id.to_owned(),
        });
        Ok(())
    }

    fn conversation(&self, _: &str, conversation_id: &str) -> Result<Conversation, PowerError> {
        Ok(recorded_conversation(conversation_id))
    }

    fn recent_messages(&self, _: &str, _: &str, _: u32) -> Result<Vec<Message>, PowerError> {
        Ok(Vec::new())
    }

    fn participants(&self, _: &str, conversation_id: &str) -> Result<Vec<Participant>, PowerError> {
        Ok(self
            .participants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(conversation_id)
            .cloned()
            .unwrap_or_default())
    }

    fn send_event(&self, event: CustomEvent) -> Result<(), PowerError> {
        self.record(Recorded::Event(event));
        Ok(())
    }

    fn http(&self, request: OutboundRequest) -> Result<InboundResponse, HttpFailure> {
        self.record(Recorded::Http(request));
        let canned = self
            .http_response
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok(canned.unwrap_or(InboundResponse {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        }))
    }

    fn push(&self, notification: PushNotification) -> Result<(), PowerError> {
        self.record(Recorded::Push(notification));
        Ok(())
    }

    fn set_timer(&self, timer: TimerSpec) -> Result<(), PowerError> {
        self.timers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((timer.plugin.clone(), timer.name.clone()), timer.clone());
        self.record(Recorded::Timer(timer));
        Ok(())
    }

    fn cancel_timer(&self, plugin: &str, name: &str) -> Result<bool, PowerError> {
        let existed = self
            .timers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(plugin.to_owned(), name.to_owned()))
            .is_some();
        self.record(Recorded::CancelTimer {
            plugin: plugin.to_owned(),
            name: name.to_owned(),
        });
        Ok(existed)
    }
}
