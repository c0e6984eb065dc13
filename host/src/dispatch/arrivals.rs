//! Events handed to the dispatcher by the commits that stored them, so that a round need not read them
//! back from the outbox and parse their JSON again.
//!
//! A commit that queued events for the after-hooks hands their live form over with its wake
//! ([`super::DispatchHandle::new_events_handed`]). The outbox stays the authority on which events are
//! owed: a round still reads the ids of the outbox's new events, and takes the events themselves from
//! what was handed over only when every one of them was; otherwise it reads them whole, as before (after a
//! restart or a reload, for events another path or process wrote, and on a node of a cluster, whose
//! commits hand nothing over). An event handed over but not in the outbox is never delivered for it.
//!
//! Reading the events whole and parsing their payloads again was about a third of a round's CPU with five
//! plugins; taking them from here made the rounds about a quarter lighter (BENCHMARKS.md, problem 39).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::events::{ChatEvent, EventError};
use crate::live::LiveEvent;
use crate::model::Millis;
use crate::store::{self, Db, StoredEvent};

/// Events kept at most, handed over but not read yet: four full rounds' worth, far above what arrives
/// between two rounds (a few milliseconds apart). Past it the oldest are forgotten; a round that needs
/// them reads them whole.
pub const MAX_KEPT: usize = 1024;

/// Members an event's audience may have to be kept: the live form of an event of a large conversation
/// holds its whole member list (1,000 ids are about 40 KB), so such events are read back whole instead,
/// and what is kept stays within a few megabytes.
pub const MAX_AUDIENCE: usize = 100;

/// An event as its commit stored it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Its id in the event log.
    pub id: i64,
    /// What live subscribers get (its id is 0 when the event is not replayable).
    pub event: Arc<LiveEvent>,
    /// Whether the log keeps its audience (a replayable event); otherwise it is stored with none.
    pub replayable: bool,
}

impl Arrival {
    /// The event as [`Db::pending_events_after`] would read it back (a copy).
    fn stored(&self) -> StoredEvent {
        let event = &self.event;
        StoredEvent {
            id: self.id,
            kind: event.kind.clone(),
            conversation_id: event.conversation_id.clone(),
            audience: if self.replayable {
                event.audience.clone()
            } else {
                Vec::new()
            },
            payload: event.payload.clone(),
            created_at: event.created_at,
        }
    }
}

/// A new event of the outbox as a round holds it: read back whole, or as its commit handed it over
/// (shared with the live subscribers, not copied).
#[derive(Debug)]
pub(super) enum NewEvent {
    /// Read from the outbox.
    Read(StoredEvent),
    /// Handed over by its commit.
    Handed(Arrival),
}

impl NewEvent {
    /// Its id.
    pub fn id(&self) -> i64 {
        match self {
            Self::Read(event) => event.id,
            Self::Handed(arrival) => arrival.id,
        }
    }

    /// Its kind, e.g. `message.new`.
    pub fn kind(&self) -> &str {
        match self {
            Self::Read(event) => &event.kind,
            Self::Handed(arrival) => &arrival.event.kind,
        }
    }

    /// Its conversation, if any.
    pub fn conversation_id(&self) -> Option<&str> {
        match self {
            Self::Read(event) => event.conversation_id.as_deref(),
            Self::Handed(arrival) => arrival.event.conversation_id.as_deref(),
        }
    }

    /// When it happened.
    pub fn created_at(&self) -> Millis {
        match self {
            Self::Read(event) => event.created_at,
            Self::Handed(arrival) => arrival.event.created_at,
        }
    }

    /// Decodes it (no copy of its payload first).
    pub fn decode(&self) -> Result<ChatEvent, EventError> {
        match self {
            Self::Read(event) => ChatEvent::from_stored(event),
            Self::Handed(arrival) => {
                ChatEvent::from_payload(arrival.id, &arrival.event.kind, &arrival.event.payload)
            }
        }
    }

    /// The event as the store holds it, for the statements that write its delivery rows: a copy when
    /// it was handed over (on a server on its own, only for events some plugin's queue holds rows for).
    pub fn stored(&self) -> Cow<'_, StoredEvent> {
        match self {
            Self::Read(event) => Cow::Borrowed(event),
            Self::Handed(arrival) => Cow::Owned(arrival.stored()),
        }
    }
}

/// Where commits hand their events over until the dispatcher's loop takes them (shared by the handle
/// and the loop).
#[derive(Debug, Default)]
pub struct Handed(Mutex<Vec<Arrival>>);

impl Handed {
    /// Keeps `arrivals` for the next round, but those of an audience over [`MAX_AUDIENCE`]. Cheap:
    /// commits call it holding the store's write lock.
    pub fn hand(&self, arrivals: Vec<Arrival>) {
        let mut handed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // A handle no loop takes from (a tool's) keeps only the newest.
        if handed.len() >= MAX_KEPT {
            handed.drain(..MAX_KEPT / 2);
        }
        handed.extend(
            arrivals
                .into_iter()
                .filter(|a| a.event.audience.len() <= MAX_AUDIENCE),
        );
    }

    /// What was handed over since the last take.
    pub fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The events handed over that no round read yet, by id: the loop's memory of them.
#[derive(Debug, Default)]
pub(super) struct Arrived(BTreeMap<i64, Arrival>);

impl Arrived {
    /// Adds what was handed over, forgetting the oldest beyond [`MAX_KEPT`].
    pub fn add(&mut self, arrivals: Vec<Arrival>) {
        for arrival in arrivals {
            self.0.insert(arrival.id, arrival);
        }
        while self.0.len() > MAX_KEPT {
            self.0.pop_first();
        }
    }

    /// Takes the events `ids`, if every one was handed over; otherwise takes none.
    fn take(&mut self, ids: &[i64]) -> Option<Vec<NewEvent>> {
        if !ids.iter().all(|id| self.0.contains_key(id)) {
            return None;
        }
        ids.iter()
            .map(|id| self.0.remove(id).map(NewEvent::Handed))
            .collect()
    }

    /// Forgets the events up to `id`: read, or in the outbox no more.
    fn forget_through(&mut self, id: i64) {
        self.0 = self.0.split_off(&id.saturating_add(1));
    }

    /// How many are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The outbox's events after `after` but `except`, at most `limit`, with whether events commit in id
/// order: what [`Db::pending_events_after`] reads, taken from what was handed over (kept in `arrived`)
/// when every one was. Every event of the outbox up to the last one read is then read or held:
/// `arrived` forgets them.
pub(super) fn pending_events(
    db: &Db,
    handed: &Handed,
    arrived: &mut Arrived,
    after: i64,
    limit: u32,
    except: &[i64],
) -> store::Result<(Vec<NewEvent>, bool)> {
    arrived.add(handed.take());
    arrived.forget_through(after);
    if !arrived.is_empty() {
        let (ids, in_order) = db.pending_event_ids_after(after, limit, except)?;
        // What committed while the ids were read was handed over meanwhile, as a rule.
        arrived.add(handed.take());
        if let Some(events) = arrived.take(&ids) {
            if let Some(last) = ids.last() {
                arrived.forget_through(*last);
            }
            return Ok((events, in_order));
        }
    }
    let (events, in_order) = db.pending_events_after(after, limit, except)?;
    if let Some(last) = events.last() {
        arrived.forget_through(last.id);
    }
    Ok((events.into_iter().map(NewEvent::Read).collect(), in_order))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn arrival(id: i64) -> Arrival {
        Arrival {
            id,
            event: Arc::new(LiveEvent {
                id,
                kind: "message.new".into(),
                conversation_id: Some("c".into()),
                audience: vec!["u".into()],
                payload: serde_json::json!({"n": id}),
                created_at: 5,
            }),
            replayable: true,
        }
    }

    #[test]
    fn events_come_only_when_every_id_was_handed_over() {
        let mut arrived = Arrived::default();
        arrived.add(vec![arrival(3), arrival(4), arrival(6), arrival(8)]);
        assert!(arrived.take(&[4, 5, 6]).is_none(), "5 was not handed over");
        let events = arrived.take(&[3, 4]).unwrap();
        assert_eq!(events.iter().map(NewEvent::id).collect::<Vec<_>>(), [3, 4]);
        let stored = events[1].stored();
        assert_eq!(stored.payload, serde_json::json!({"n": 4}));
        assert_eq!(stored.audience, ["u"]);
        assert_eq!(events[1].conversation_id(), Some("c"));
        assert!(arrived.take(&[4]).is_none(), "taken");
        arrived.forget_through(6);
        assert!(arrived.take(&[6]).is_none());
        assert_eq!(arrived.len(), 1);
    }

    #[test]
    fn a_live_only_event_is_read_back_without_audience() {
        let mut live = arrival(7);
        live.replayable = false;
        assert!(live.stored().audience.is_empty());
    }

    #[test]
    fn memory_and_the_hand_over_stay_bounded() {
        let mut arrived = Arrived::default();
        arrived.add(
            (1..=i64::try_from(MAX_KEPT).unwrap() + 10)
                .map(arrival)
                .collect(),
        );
        assert_eq!(arrived.len(), MAX_KEPT);
        assert!(arrived.take(&[10]).is_none(), "the oldest are forgotten");
        let handed = Handed::default();
        for id in 0..i64::try_from(MAX_KEPT * 3).unwrap() {
            handed.hand(vec![arrival(id)]);
        }
        let mut large = arrival(-1);
        Arc::make_mut(&mut large.event).audience = vec!["u".to_owned(); MAX_AUDIENCE + 1];
        handed.hand(vec![large]);
        let taken = handed.take();
        assert!(taken.len() <= MAX_KEPT);
        assert!(
            taken.iter().all(|a| a.id >= 0),
            "a large audience is read back"
        );
        assert_eq!(
            taken.last().map(|a| a.id),
            Some(i64::try_from(MAX_KEPT * 3 - 1).unwrap())
        );
        assert!(handed.take().is_empty());
    }
}
