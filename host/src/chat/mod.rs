//! The chat operations: one method of [`Chat`] per thing a user (or admin) can do.
//!
//! ## Shape of an operation
//! 1. Authorize and validate. A user who is not a participant gets [`ChatError::NotFound`] for anything
//!    in the conversation (never "forbidden": that would reveal it exists); a participant who may not do
//!    this gets [`ChatError::Forbidden`].
//! 2. Sending and editing run the before-hooks inline ([`before`]), outside any transaction.
//! 3. ONE transaction ([`Chat::commit`]) re-checks access, makes the change and appends its
//!    [`ChatEvent`]s, which also queues them for the after-hooks.
//! 4. After the commit, still under the write lock (so subscribers see event-id order), the events are
//!    published to the [`Hub`] and the dispatcher is woken. Nothing waits for a plugin.
//!
//! Every public operation is `async` and runs its blocking work (SQLite, before-hooks) on a blocking
//! thread.
//!
//! ## Layout
//! One file per group: [`conversations`], [`participants`], [`roles`] (roles and ownership), [`bans`],
//! [`blocks`], [`messages`] (send, list, edit, delete),
//! [`typing`], [`receipts`], [`reactions`], [`devices`] (push device tokens), [`bots`] (what plugins do as
//! their bot users), [`users`] (user administration, tokens, authentication), [`admin`] (dead letters);
//! [`before`] runs the before-hook chain; [`inputs`] and [`error`] hold the types, [`fields`] the rule of
//! every input field (which the OpenAPI document states too).

pub mod admin;
pub mod bans;
pub mod before;
pub mod blocks;
pub mod bots;
pub mod conversations;
pub mod devices;
pub mod error;
pub mod fields;
pub mod held;
pub mod inputs;
pub mod messages;
pub mod participants;
pub mod presence;
pub mod reactions;
pub mod receipts;
pub mod roles;
pub mod threads;
pub mod typing;
pub mod users;

use std::sync::Arc;

use crate::store::{Read, Tx};

pub use error::ChatError;
pub use inputs::{
    AddParticipants, AddReaction, CreateConversation, CreatedUser, EditMessage, IssueToken,
    IssuedToken, MarkRead, MessagePage, NewUser, ReadState, SendMessage, Typing,
    UpdateConversation, UsersPage,
};

use crate::clock::{Clock, SystemClock};
use crate::dispatch::{Arrival, DispatchHandle};
use crate::events::{self, ChatEvent, Visibility};
use crate::live::{Hub, LiveEvent};
use crate::model::{Conversation, Message, Millis, User};
use crate::plugins::registry::Registry;
use crate::store::{self, AfterCommit, Db, StoreError};

/// The chat service: what the API calls. Cheap to clone (every field is shared).
#[derive(Debug, Clone)]
pub struct Chat {
    db: Arc<Db>,
    /// What the operations stamp their rows and events with, and tokens' expiry is judged by: the
    /// system clock, or the server's injected one (tests on fake time).
    clock: Arc<dyn Clock>,
    registry: Arc<Registry>,
    hub: Hub,
    dispatch: DispatchHandle,
    /// Called after a commit that stored events, instead of waking the local dispatcher: a cluster node's
    /// events reach the outbox only once its sequencer took them, so it pokes the sequencer.
    stored: Option<StoredSignal>,
}

/// What [`Chat::with_stored_signal`] calls.
#[derive(Clone)]
pub struct StoredSignal(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for StoredSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredSignal")
    }
}

/// Events appended during one transaction, published once it commits.
///
/// An event goes into the outbox only if a running plugin exports its hook when it is recorded: with no
/// plugin listening, a change costs the dispatcher nothing (no outbox row, no round, no wake-up). A
/// plugin loaded later gets the changes from its load on, as one loaded after a fan-out always did.
#[derive(Debug)]
pub struct Recorder {
    /// The operation's clock reading: every row and event of the transaction gets the same time.
    pub now: Millis,
    /// Who listens: whether an event is queued for the after-hooks.
    registry: Arc<Registry>,
    live: Vec<Arc<LiveEvent>>,
    /// An event was stored (a cluster node's sequencer has work).
    stored: bool,
    /// The events queued for the after-hooks (the dispatcher has work), handed to it after the commit.
    queued: Vec<Arrival>,
}

impl Recorder {
    /// Appends `event` to the log in `tx` and keeps its live form for publishing after the commit.
    pub fn record(&mut self, tx: &dyn Tx, event: &ChatEvent) -> store::Result<()> {
        self.record_for(tx, event, &[])
    }

    /// Like [`Recorder::record`], with `also` in the audience besides the event's own (the contacts a
    /// presence change goes to, which only the operation can read).
    pub fn record_for(
        &mut self,
        tx: &dyn Tx,
        event: &ChatEvent,
        also: &[String],
    ) -> store::Result<()> {
        let queued = events::hook_for_kind(event.kind())
            .is_some_and(|hook| self.registry.any_implements(hook));
        let (id, live) = events::append_event_for(tx, event, also, self.now, queued)?;
        self.stored = true;
        let live = Arc::new(live);
        if queued {
            self.queued.push(Arrival {
                id,
                event: live.clone(),
                replayable: event.visibility() == Visibility::Replayable,
            });
        }
        if event.visibility() != Visibility::HooksOnly {
            self.live.push(live);
        }
        Ok(())
    }
}

impl Chat {
    /// The chat service over `db`, calling the plugins of `registry`, publishing to `hub` and waking the
    /// dispatcher through `dispatch`.
    pub fn new(db: Arc<Db>, registry: Arc<Registry>, hub: Hub, dispatch: DispatchHandle) -> Self {
        Chat {
            db,
            clock: Arc::new(SystemClock),
            registry,
            hub,
            dispatch,
            stored: None,
        }
    }

    /// The same service calling `signal` after each commit that stored events, instead of waking the
    /// dispatcher (a cluster node: see [`crate::cluster`]).
    pub fn with_stored_signal(mut self, signal: StoredSignal) -> Self {
        self.stored = Some(signal);
        self
    }

    /// The same service on `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The service's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The time now, by the service's clock, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The live event hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The plugins.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The dispatcher's wake handle.
    pub fn dispatch(&self) -> &DispatchHandle {
        &self.dispatch
    }

    /// Events visible to `actor` after event `since`, oldest first, at most `limit` (a reconnecting
    /// WebSocket client's catch-up; typing is never included).
    pub async fn events_since(
        &self,
        actor: &User,
        since: i64,
        limit: u32,
    ) -> Result<Vec<LiveEvent>, ChatError> {
        let user = actor.id.clone();
        self.blocking(move |chat| {
            let stored = chat.db.read(|c| c.events_since(&user, since, limit))?;
            Ok(stored.into_iter().map(LiveEvent::from).collect())
        })
        .await
    }

    /// Runs `f` with a clone of the service where it may block ([`crate::blocking::run`]).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Chat) -> Result<T, ChatError> + Send + 'static,
    ) -> Result<T, ChatError> {
        let chat = self.clone();
        crate::blocking::run(move || f(&chat)).await?
    }

    /// Runs `f` in one write transaction; if it succeeds, publishes the events it recorded and wakes the
    /// dispatcher while the write lock is still held. An `Err` from `f` rolls everything back. `f` may run
    /// again if the backend retries the transaction (see [`Db::write`]), with a fresh [`Recorder`].
    pub fn commit<T>(
        &self,
        mut f: impl FnMut(&dyn Tx, &mut Recorder) -> Result<T, ChatError>,
    ) -> Result<T, ChatError> {
        // `Db::write_then` speaks `StoreError`; a chat error (forbidden, rejected, ...) is parked here
        // while a placeholder store error rolls the transaction back.
        let mut failure: Option<ChatError> = None;
        let now = self.now_ms();
        let result = self.db.write_then(
            |tx| {
                let mut recorder = Recorder {
                    now,
                    registry: self.registry.clone(),
                    live: Vec::new(),
                    stored: false,
                    queued: Vec::new(),
                };
                match f(tx, &mut recorder) {
                    Ok(value) => Ok((value, recorder)),
                    Err(e) => {
                        failure = Some(e);
                        Err(StoreError::Invalid("operation refused".into()))
                    }
                }
            },
            |(_, recorder)| self.after_commit(recorder),
        );
        match result {
            Ok((value, _)) => Ok(value),
            Err(e) => Err(failure.take().unwrap_or_else(|| e.into())),
        }
    }

    /// What a committed transaction that recorded into `recorder` leaves to do: publish its live events,
    /// then wake whoever takes its stored events (the dispatcher, or a cluster node's sequencer). `None`
    /// when there is nothing to do.
    fn after_commit(&self, recorder: &Recorder) -> Option<AfterCommit> {
        let wake: Option<Box<dyn FnOnce() + Send>> = match &self.stored {
            Some(signal) if recorder.stored => {
                let signal = signal.clone();
                Some(Box::new(move || (signal.0)()))
            }
            None if !recorder.queued.is_empty() => {
                let dispatch = self.dispatch.clone();
                let arrivals = recorder.queued.clone();
                Some(Box::new(move || dispatch.new_events_handed(arrivals)))
            }
            _ => None,
        };
        if recorder.live.is_empty() && wake.is_none() {
            return None;
        }
        let hub = self.hub.clone();
        let live = recorder.live.clone();
        Some(Box::new(move || {
            for event in live {
                hub.publish_shared(event);
            }
            if let Some(wake) = wake {
                wake();
            }
        }))
    }

    /// Runs `f` on a read snapshot, with chat errors. `f` may run again on PostgreSQL, if the first
    /// connection turned out closed before its first statement ran ([`Db::read`]).
    pub fn read<T>(
        &self,
        mut f: impl FnMut(&dyn Read) -> Result<T, ChatError>,
    ) -> Result<T, ChatError> {
        let mut failure: Option<ChatError> = None;
        let result = self.db.read(|c| {
            f(c).map_err(|e| {
                failure = Some(e);
                StoreError::Invalid("read refused".into())
            })
        });
        result.map_err(|e| failure.take().unwrap_or_else(|| e.into()))
    }
}

/// The conversation `id` if `user_id` participates in it; [`ChatError::NotFound`] otherwise (whether or
/// not it exists).
pub(crate) fn member_conversation(
    conn: &dyn Read,
    id: &str,
    user_id: &str,
) -> Result<Conversation, ChatError> {
    // One read: the participants come with the conversation (the store reads both in one statement on
    // PostgreSQL).
    require_member(conn.get_conversation(id)?, user_id)
}

/// `conversation` if `user_id` participates in it; otherwise the same [`ChatError::NotFound`] as a
/// conversation that does not exist.
pub(crate) fn require_member(
    conversation: Conversation,
    user_id: &str,
) -> Result<Conversation, ChatError> {
    if !conversation.participant_ids.iter().any(|p| p == user_id) {
        return Err(ChatError::not_found("conversation", conversation.id));
    }
    Ok(conversation)
}

/// [`ChatError::Forbidden`] unless `user_id` administers `conversation`.
pub(crate) fn require_admin(
    conversation: &Conversation,
    user_id: &str,
    what: &str,
) -> Result<(), ChatError> {
    if conversation.admin_ids.iter().any(|a| a == user_id) {
        Ok(())
    } else {
        Err(ChatError::Forbidden(format!(
            "only admins of the conversation may {what}"
        )))
    }
}

/// The message `id` and its conversation if `user_id` participates in it; [`ChatError::NotFound`]
/// (for the message) otherwise.
pub(crate) fn member_message(
    conn: &dyn Read,
    id: &str,
    user_id: &str,
) -> Result<(Message, Conversation), ChatError> {
    let message = conn.get_message(id)?;
    if !conn.is_participant(&message.conversation_id, user_id)? {
        return Err(ChatError::not_found("message", id));
    }
    let conversation = conn.get_conversation(&message.conversation_id)?;
    Ok((message, conversation))
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

/// [`ChatError::Invalid`] naming the item of `ids` (a `list` field of the request) that is not a user:
/// the request names someone who does not exist, which is not the same as a missing conversation (404).
pub(crate) fn require_users(
    conn: &dyn Read,
    list: &fields::List,
    ids: &[String],
) -> Result<(), ChatError> {
    if let Some(missing) = conn.missing_users(ids)?.first() {
        let i = ids.iter().position(|id| id == missing).unwrap_or_default();
        return Err(ChatError::invalid(
            format!("{}[{i}]", list.field),
            format!("there is no user {missing:?}"),
        ));
    }
    Ok(())
}
