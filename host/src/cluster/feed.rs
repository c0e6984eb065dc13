//! A cluster node's live feed: every node (the sequencer's too) hands its hub the sequencer's events in id
//! order, each once, and the live-only events and disconnects of every node (SCALE-OUT.md 2.5).
//!
//! Core NATS may lose messages (a slow consumer is cut off, a reconnect drops what was in flight, a
//! sequencer may die between its commit and its publish), but event ids are gapless: the feed remembers
//! the last id it routed, and whenever it sees a later one than the next (an event, the sequencer's
//! once-a-second [`Head`], or a reconnection), it reads the missing events from the database first. An
//! event too big for one NATS message arrives as its id only and is read the same way. So every
//! connected client sees every event once and in order, however NATS behaves, as long as the database
//! answers; while it does not, the feed keeps the gap and fills it at the next message or tick.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::nats::Nats;
use super::subjects;
use super::wire::{Disconnect, Head, WireEvent};
use crate::live::{Hub, LiveEvent};
use crate::stoppable::Stoppable;
use crate::store::{Db, StoreError};

/// Events read from the database per query while filling a gap.
const FILL_PAGE: u32 = 1000;

/// How often a feed with a gap it could not fill (the database was away) tries again.
const RETRY_FILL: Duration = Duration::from_secs(1);

/// The running feed; stops when [`Feed::stop`] is awaited or it is dropped.
#[derive(Debug)]
pub struct Feed(Stoppable);

impl Feed {
    /// Subscribes to `cluster`'s subjects and routes what arrives to `hub`, starting after the newest
    /// event in `db` now (clients catch up on earlier ones with `?since=`).
    pub async fn start(db: Arc<Db>, hub: Hub, nats: &Nats, cluster: &str) -> anyhow::Result<Feed> {
        let client = &nats.client;
        let events = client.subscribe(subjects::events(cluster)).await?;
        let heads = client.subscribe(subjects::head(cluster)).await?;
        let live = client.subscribe(subjects::live(cluster)).await?;
        let disconnects = client.subscribe(subjects::disconnect(cluster)).await?;
        let last = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || db.read(|c| c.latest_event_id())).await??
        };
        let mut state = Router { db, hub, last };
        let mut reconnects = nats.reconnects.clone();
        let task = Stoppable::spawn(move |mut stopped| async move {
            let (mut events, mut heads) = (events, heads);
            let (mut live, mut disconnects) = (live, disconnects);
            let mut retry = tokio::time::interval(RETRY_FILL);
            // Ids up to here exist; `state.last` catches up to it.
            let mut known = last;
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    Some(msg) = events.next() => match serde_json::from_slice::<WireEvent>(&msg.payload) {
                        Ok(event) => {
                            known = known.max(event.id);
                            state.sequenced(event).await;
                        }
                        Err(err) => tracing::warn!("undecodable event from NATS: {err}"),
                    },
                    Some(msg) = heads.next() => match serde_json::from_slice::<Head>(&msg.payload) {
                        Ok(head) => {
                            known = known.max(head.id);
                            state.fill(known).await;
                        }
                        Err(err) => tracing::warn!("undecodable head from NATS: {err}"),
                    },
                    Some(msg) = live.next() => match serde_json::from_slice::<WireEvent>(&msg.payload) {
                        Ok(event) => match event.into_live() {
                            Some(event) => state.hub.route_shared(Arc::new(event)),
                            None => tracing::warn!("a live-only event too big for NATS was dropped"),
                        },
                        Err(err) => tracing::warn!("undecodable live event from NATS: {err}"),
                    },
                    Some(msg) = disconnects.next() => match serde_json::from_slice::<Disconnect>(&msg.payload) {
                        Ok(d) => state.hub.disconnect_local(&d.user_id),
                        Err(err) => tracing::warn!("undecodable disconnect from NATS: {err}"),
                    },
                    Ok(()) = reconnects.changed() => {
                        // Whatever was published while the connection was down is in the database.
                        known = known.max(state.latest().await.unwrap_or(known));
                        state.fill(known).await;
                    }
                    _ = retry.tick() => {
                        if known > state.last {
                            state.fill(known).await;
                        }
                    }
                }
            }
        });
        Ok(Feed(task))
    }

    /// Stops the feed and waits for it.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

/// The feed's state: what it routed last.
struct Router {
    db: Arc<Db>,
    hub: Hub,
    /// The id of the last event handed to the hub (or skipped as already before the feed started).
    last: i64,
}

impl Router {
    /// An event from the sequencer: routed if it is the next one, after filling the gap before it if it
    /// is later, ignored if already routed.
    async fn sequenced(&mut self, event: WireEvent) {
        if event.id <= self.last {
            return;
        }
        if event.id == self.last + 1
            && let Some(live) = event.clone().into_live()
        {
            self.route(live);
            return;
        }
        self.fill(event.id).await;
    }

    /// Routes every event after the last one routed through `through`, read from the database; on a
    /// database error, logs it and leaves the gap for the next try.
    async fn fill(&mut self, through: i64) {
        while self.last < through {
            let (db, after) = (self.db.clone(), self.last);
            let page = tokio::task::spawn_blocking(move || page(&db, after, through)).await;
            let events = match page {
                Ok(Ok(events)) => events,
                Ok(Err(err)) => {
                    tracing::warn!(after, through, "cannot read missed events yet: {err}");
                    return;
                }
                Err(err) => {
                    tracing::error!("reading missed events panicked: {err}");
                    return;
                }
            };
            if events.is_empty() {
                // Ids may skip numbers (a server on its own left holes before the cluster started).
                self.last = through;
                return;
            }
            for event in events {
                self.route(LiveEvent::from(event));
            }
        }
    }

    fn route(&mut self, event: LiveEvent) {
        self.last = event.id;
        self.hub.route_shared(Arc::new(event));
    }

    /// The newest event id in the database, if it answers.
    async fn latest(&self) -> Option<i64> {
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || db.read(|c| c.latest_event_id())).await {
            Ok(Ok(id)) => Some(id),
            _ => None,
        }
    }
}

/// Events `after + 1 ..= through`, one page.
fn page(db: &Db, after: i64, through: i64) -> Result<Vec<crate::store::StoredEvent>, StoreError> {
    match db.as_postgres() {
        Some(pg) => pg.events_between(after, through, FILL_PAGE),
        None => Err(StoreError::Invalid(
            "a cluster node's database is PostgreSQL".into(),
        )),
    }
}
