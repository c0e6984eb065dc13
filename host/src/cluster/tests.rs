//! The feed and the relay on real PostgreSQL and NATS servers: events lost or cut short on NATS are read
//! from the database, duplicates are dropped, and what a relayed hub publishes comes back to every node.

use std::sync::Arc;
use std::time::Duration;

use chathooks_testservers::{Nats as NatsServer, Postgres};
use serde_json::json;
use tokio::sync::broadcast;

use super::feed::Feed;
use super::nats::{self, Nats};
use super::subjects;
use super::wire::{Head, WireEvent};
use crate::config::ClusterSettings;
use crate::live::{Hub, LiveEvent};
use crate::store::postgres::sequencer::SequencerSession;
use crate::store::{Db, Durability, NewConversation, NewUser, PoolOptions, StoredEvent};

type TestResult = anyhow::Result<()>;

/// A cluster node's database with alice and one conversation, the NATS server and a client on it.
struct Setup {
    db: Arc<Db>,
    conversation: String,
    nats: Nats,
    _server: NatsServer,
}

async fn setup() -> anyhow::Result<Option<Setup>> {
    let (Some(pg), Some(server)) = (Postgres::shared(), NatsServer::start_or_skip()) else {
        return Ok(None);
    };
    let url = pg.url_for_new_database()?;
    let pool = PoolOptions {
        size: 4,
        ..PoolOptions::default()
    };
    let db = tokio::task::spawn_blocking(move || -> anyhow::Result<(Db, String)> {
        let db = Db::connect(&url, Durability::Process, pool)?;
        let conversation = db.write(|tx| {
            let alice = NewUser {
                id: "alice".into(),
                name: "Alice".into(),
                metadata: json!({}),
            };
            tx.create_user(&alice, 1)?;
            let new = NewConversation {
                participant_ids: vec!["alice".into()],
                ..NewConversation::default()
            };
            Ok(tx.create_conversation(&new, 1)?.value.id)
        })?;
        db.as_postgres()
            .ok_or_else(|| anyhow::anyhow!("PostgreSQL"))?
            .join_cluster("t", "n1")?;
        Ok((db, conversation))
    })
    .await??;
    let settings = ClusterSettings {
        nats: vec![server.url()],
        node_id: "n1".into(),
        name: "t".into(),
    };
    let nats = nats::connect(&settings).await?;
    Ok(Some(Setup {
        db: Arc::new(db.0),
        conversation: db.1,
        nats,
        _server: server,
    }))
}

impl Setup {
    /// Appends `n` events as a cluster writer does and sequences them, returning them as the sequencer
    /// would publish them.
    async fn sequenced(&self, n: usize) -> anyhow::Result<Vec<StoredEvent>> {
        let (db, conversation) = (self.db.clone(), self.conversation.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<StoredEvent>> {
            for i in 0..n {
                db.write(|tx| {
                    let audience = ["alice".to_owned()];
                    tx.append_event("x", Some(&conversation), &audience, &json!({"i": i}), 1)
                })?;
            }
            let pg = db
                .as_postgres()
                .ok_or_else(|| anyhow::anyhow!("PostgreSQL"))?;
            let mut session = pg
                .handle()
                .block_on(SequencerSession::open(pg.pool(), "t", "n1"))?;
            Ok(pg.handle().block_on(session.sequence(1000))?)
        })
        .await?
    }

    async fn publish(&self, subject: String, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.nats.client.publish(subject, bytes.into()).await?;
        self.nats.client.flush().await?;
        Ok(())
    }

    async fn publish_event(&self, event: &StoredEvent, max_bytes: usize) -> anyhow::Result<()> {
        let bytes = WireEvent::from_stored(event.clone()).encode(max_bytes)?;
        self.publish(subjects::events("t"), bytes).await
    }
}

/// The ids routed to `hub`'s observer within a short wait, until `count` arrived.
async fn routed(rx: &mut broadcast::Receiver<Arc<LiveEvent>>, count: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    while ids.len() < count {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Ok(event)) => ids.push(event.id),
            _ => break,
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_routes_each_event_once_in_order_and_reads_what_nats_lost() -> TestResult {
    let Some(setup) = setup().await? else {
        return Ok(());
    };
    let hub = Hub::new();
    let mut observed = hub.subscribe();
    let feed = Feed::start(setup.db.clone(), hub.clone(), &setup.nats, "t").await?;
    let events = setup.sequenced(5).await?;
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );

    // 2 is lost, 3 arrives whole, 1 arrives late (a duplicate by then), 4 only as its id (too big).
    setup.publish_event(&events[0], usize::MAX).await?;
    setup.publish_event(&events[2], usize::MAX).await?;
    setup.publish_event(&events[0], usize::MAX).await?;
    setup.publish_event(&events[3], 10).await?;
    assert_eq!(routed(&mut observed, 4).await, [1, 2, 3, 4]);

    // 5's publish is lost altogether: the sequencer's head reveals it.
    let head = serde_json::to_vec(&Head { id: 5 })?;
    setup.publish(subjects::head("t"), head).await?;
    assert_eq!(routed(&mut observed, 1).await, [5]);
    // And nothing twice: the next thing routed is the next event.
    setup.publish_event(&events[1], usize::MAX).await?;
    let next = setup.sequenced(1).await?;
    setup.publish_event(&next[0], usize::MAX).await?;
    assert_eq!(routed(&mut observed, 1).await, [6]);
    feed.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_relayed_hub_publishes_reaches_every_node_and_stored_events_wait_for_the_feed()
-> TestResult {
    let Some(setup) = setup().await? else {
        return Ok(());
    };
    // Two nodes' hubs on one NATS: each has a feed; only `origin` publishes.
    let origin = Hub::relayed(nats::NatsRelay::spawn(setup.nats.client.clone(), "t"));
    let other = Hub::new();
    let mut at_origin = origin.subscribe();
    let mut at_other = other.subscribe();
    let mut connection = other.subscribe_user("alice");
    let feeds = [
        Feed::start(setup.db.clone(), origin.clone(), &setup.nats, "t").await?,
        Feed::start(setup.db.clone(), other.clone(), &setup.nats, "t").await?,
    ];
    let typing = LiveEvent {
        id: 0,
        kind: "typing".into(),
        conversation_id: Some(setup.conversation.clone()),
        audience: vec!["alice".into()],
        payload: json!({"user_id": "alice"}),
        created_at: 1,
    };
    // A stored event published by a writer is left to the sequencer's feed: not routed from here.
    origin.publish(LiveEvent {
        id: 99,
        ..typing.clone()
    });
    origin.publish(typing.clone());
    for observed in [&mut at_origin, &mut at_other] {
        let event = tokio::time::timeout(Duration::from_secs(5), observed.recv()).await??;
        assert_eq!(*event, typing);
    }
    // alice's connection on the other node got it, then a disconnect reaches it.
    let frame = tokio::time::timeout(Duration::from_secs(5), connection.recv()).await??;
    assert_eq!(frame.id, 0);
    origin.disconnect_user("alice");
    let closed = tokio::time::timeout(Duration::from_secs(5), connection.recv()).await?;
    assert!(
        closed.is_err(),
        "alice's connection on the other node is closed"
    );
    for feed in feeds {
        feed.stop().await;
    }
    Ok(())
}
