//! Cluster mode's store, against a real server: writers of a cluster node append drafts with no writer
//! mutex, the sequencer turns them into gapless ids in commit order per conversation, one session holds
//! the role and a stale holder is ended, and a server on its own and cluster nodes exclude each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chathooks_testservers::Postgres;
use serde_json::json;

use super::PgDb;
use super::error::PgError;
use super::sequencer::SequencerSession;
use crate::model::Origin;
use crate::store::limits::LARGE_AUDIENCE;
use crate::store::{Db, Durability, NewConversation, NewMessage, NewUser, StoreError, StoredEvent};

type TestResult = anyhow::Result<()>;

/// A fresh database on the shared server, as a cluster node would open it (not yet joined); `None`
/// without PostgreSQL.
fn fresh() -> anyhow::Result<Option<(Db, String)>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let url = pg.url_for_new_database()?;
    let db = Db::connect(&url, Durability::Process, super::db_tests::test_pool())?;
    Ok(Some((db, url)))
}

/// The grace a server that is expected to be refused gives the lock's holder: the holder is not going
/// away, so the refusal need not wait the server's full [`super::owner::TAKE_GRACE`].
const SHORT_GRACE: Duration = Duration::from_millis(50);

fn pg(db: &Db) -> anyhow::Result<&PgDb> {
    db.as_postgres()
        .ok_or_else(|| anyhow::anyhow!("a PostgreSQL database"))
}

/// alice, and `n` conversations of hers.
fn seed(db: &Db, n: usize) -> anyhow::Result<Vec<String>> {
    db.write(|tx| {
        let alice = NewUser {
            id: "alice".into(),
            name: "Alice".into(),
            metadata: json!({}),
        };
        tx.create_user(&alice, 1)?;
        (0..n)
            .map(|_| {
                let new = NewConversation {
                    participant_ids: vec!["alice".into()],
                    ..NewConversation::default()
                };
                Ok(tx.create_conversation(&new, 1)?.value.id)
            })
            .collect()
    })
    .map_err(Into::into)
}

/// Sends a message as the chat layer does (message and event in one transaction), its seq in the event.
fn send(db: &Db, conversation: &str) -> anyhow::Result<()> {
    db.write(|tx| {
        let new = NewMessage {
            conversation_id: conversation.to_owned(),
            sender_id: "alice".into(),
            body: "hi".into(),
            mentions: Vec::new(),
            client_id: None,
            metadata: json!({}),
            origin: Origin::User,
            ..NewMessage::default()
        };
        let sent = tx.send_message(&new, 1)?;
        let payload = json!({"seq": sent.value.seq});
        tx.append_event(
            "message.new",
            Some(conversation),
            &["alice".into()],
            &payload,
            1,
        )
    })?;
    Ok(())
}

/// Runs batches on `session` until it finds no drafts.
fn drain(db: &Db, session: &mut SequencerSession) -> anyhow::Result<Vec<StoredEvent>> {
    let mut all = Vec::new();
    loop {
        let batch = pg(db)?.handle().block_on(session.sequence(7))?;
        if batch.is_empty() {
            return Ok(all);
        }
        all.extend(batch);
    }
}

fn open_session(db: &Db, node: &str) -> anyhow::Result<SequencerSession> {
    let pg = pg(db)?;
    Ok(pg
        .handle()
        .block_on(SequencerSession::open(pg.pool(), "t", node))?)
}

#[test]
fn drafts_of_concurrent_writers_become_gapless_ids_in_commit_order_per_conversation() -> TestResult
{
    const WRITERS: usize = 6;
    const SENDS: usize = 20;
    let Some((db, _)) = fresh()? else {
        return Ok(());
    };
    let conversations = seed(&db, 3)?;
    pg(&db)?.join_cluster("t", "n1")?;
    let mut session = open_session(&db, "n1")?;
    let writing = AtomicBool::new(true);
    let sequenced = std::thread::scope(|s| -> anyhow::Result<Vec<StoredEvent>> {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, conversation) = (&db, &conversations[w % conversations.len()]);
                s.spawn(move || -> anyhow::Result<()> {
                    for _ in 0..SENDS {
                        send(db, conversation)?;
                    }
                    Ok(())
                })
            })
            .collect();
        // The sequencer runs while they write, as on a live cluster.
        let sequencer = s.spawn(|| -> anyhow::Result<Vec<StoredEvent>> {
            let mut all = Vec::new();
            while writing.load(Ordering::Acquire) {
                all.extend(drain(&db, &mut session)?);
            }
            all.extend(drain(&db, &mut session)?);
            Ok(all)
        });
        for writer in writers {
            writer
                .join()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        writing.store(false, Ordering::Release);
        sequencer
            .join()
            .map_err(|_| anyhow::anyhow!("the sequencer panicked"))?
    })?;

    let ids: Vec<i64> = sequenced.iter().map(|e| e.id).collect();
    let total = i64::try_from(WRITERS * SENDS)?;
    assert_eq!(ids, (1..=total).collect::<Vec<_>>(), "gapless, in order");
    let mut last_seq: HashMap<String, i64> = HashMap::new();
    for event in &sequenced {
        let conversation = event.conversation_id.clone().unwrap_or_default();
        let seq = event.payload["seq"].as_i64().unwrap_or(-1);
        let before = last_seq.insert(conversation, seq).unwrap_or(0);
        assert_eq!(
            seq,
            before + 1,
            "event {} out of its conversation's order",
            event.id
        );
    }
    // Readers see them like events a server on its own wrote: audience rows, outbox rows.
    let visible = db.read(|r| r.events_since("alice", 0, 1000))?;
    assert_eq!(visible.len(), WRITERS * SENDS);
    assert_eq!(db.read(|r| r.outbox_depth())?, u64::try_from(total)?);
    Ok(())
}

#[test]
fn one_session_holds_the_role_and_a_holder_that_stopped_beating_is_ended() -> TestResult {
    let Some((db, _)) = fresh()? else {
        return Ok(());
    };
    let pg = pg(&db)?;
    let handle = pg.handle();
    let first = open_session(&db, "n1")?;
    let second = open_session(&db, "n2")?;
    assert!(handle.block_on(first.try_lead())?);
    assert!(
        handle.block_on(first.try_lead())?,
        "holding it already counts"
    );
    assert!(!handle.block_on(second.try_lead())?);
    handle.block_on(first.heartbeat())?;
    assert_eq!(
        handle.block_on(second.challenge(10_000))?,
        None,
        "a fresh heartbeat is left alone"
    );
    assert_eq!(
        handle.block_on(second.holder())?.map(|(node, _)| node),
        Some("n1".to_owned())
    );

    // n1 hangs: its heartbeat ages past the limit while its session still holds the lock.
    let client = pg.handle().block_on(pg.pool().get())?;
    pg.handle().block_on(client.execute(
        "UPDATE sequencers SET heartbeat_at = heartbeat_at - 60000",
        &[],
    ))?;
    assert_eq!(
        handle.block_on(second.challenge(10_000))?,
        Some("n1".to_owned())
    );
    let mut taken = false;
    for _ in 0..100 {
        if handle.block_on(second.try_lead())? {
            taken = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        taken,
        "the role is free once the hung holder's session ended"
    );
    assert!(
        handle.block_on(first.try_lead()).is_err(),
        "the hung holder's session is gone"
    );
    Ok(())
}

#[test]
fn a_server_on_its_own_sequences_what_a_cluster_left_and_continues_its_ids() -> TestResult {
    let Some((db, url)) = fresh()? else {
        return Ok(());
    };
    let conversations = seed(&db, 1)?;
    pg(&db)?.join_cluster("t", "n1")?;
    let mut session = open_session(&db, "n1")?;
    send(&db, &conversations[0])?;
    assert_eq!(drain(&db, &mut session)?.len(), 1);
    send(&db, &conversations[0])?; // left as a draft: every node stopped before sequencing it
    drop(session);
    drop(db);

    let alone = Db::connect(&url, Durability::Process, super::db_tests::test_pool())?;
    alone.claim()?;
    assert_eq!(
        alone.read(|r| r.latest_event_id())?,
        2,
        "the draft became event 2"
    );
    send(&alone, &conversations[0])?;
    assert_eq!(
        alone.read(|r| r.latest_event_id())?,
        3,
        "ids go on after it"
    );
    Ok(())
}

#[test]
fn a_server_on_its_own_and_cluster_nodes_refuse_each_other() -> TestResult {
    let Some((first, url)) = fresh()? else {
        return Ok(());
    };
    let open = || Db::connect(&url, Durability::Process, super::db_tests::test_pool());
    first.claim()?;
    let node = open()?;
    pg(&node)?.set_lock_grace(SHORT_GRACE);
    let refused = pg(&node)?.join_cluster("t", "n1");
    assert!(
        matches!(refused, Err(StoreError::Postgres(PgError::InUse { .. }))),
        "{refused:?}"
    );
    drop(first);

    let (one, two) = (open()?, open()?);
    pg(&one)?.join_cluster("t", "n1")?;
    pg(&two)?.join_cluster("t", "n1")?;
    let alone = open()?;
    pg(&alone)?.set_lock_grace(SHORT_GRACE);
    let refused = alone.claim();
    assert!(
        matches!(refused, Err(StoreError::Postgres(PgError::InUse { .. }))),
        "{refused:?}"
    );
    Ok(())
}

#[test]
fn a_server_is_not_refused_by_the_one_it_replaces_while_that_one_goes_away() -> TestResult {
    let Some((first, url)) = fresh()? else {
        return Ok(());
    };
    first.claim()?;
    let next = Db::connect(&url, Durability::Process, super::db_tests::test_pool())?;
    // The first server stops while the next one is starting: its lock is released a moment later,
    // within the grace the next one gives it.
    std::thread::scope(|s| {
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(first);
        });
        next.claim()
    })?;
    let third = Db::connect(&url, Durability::Process, super::db_tests::test_pool())?;
    pg(&third)?.set_lock_grace(SHORT_GRACE);
    let refused = third.claim();
    assert!(
        matches!(refused, Err(StoreError::Postgres(PgError::InUse { .. }))),
        "{refused:?}"
    );
    Ok(())
}

#[test]
fn the_same_send_through_several_nodes_at_once_makes_one_message() -> TestResult {
    const NODES: usize = 3;
    let Some((db, url)) = fresh()? else {
        return Ok(());
    };
    let conversations = seed(&db, 1)?;
    let nodes = (0..NODES)
        .map(|_| -> anyhow::Result<Db> {
            let node = Db::connect(&url, Durability::Process, super::db_tests::test_pool())?;
            pg(&node)?.join_cluster("t", "n1")?;
            Ok(node)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for round in 0..10 {
        let client_id = format!("retry-{round}");
        let barrier = std::sync::Barrier::new(NODES);
        let outcomes = std::thread::scope(|s| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|node| {
                    let (barrier, client_id) = (&barrier, &client_id);
                    let conversation = &conversations[0];
                    s.spawn(move || {
                        barrier.wait();
                        node.write(|tx| {
                            let new = NewMessage {
                                conversation_id: conversation.clone(),
                                sender_id: "alice".into(),
                                body: "once".into(),
                                mentions: Vec::new(),
                                client_id: Some(client_id.clone()),
                                metadata: json!({}),
                                origin: Origin::User,
                                ..NewMessage::default()
                            };
                            let sent = tx.send_message(&new, 1)?;
                            Ok((sent.value.id, sent.changed))
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow::anyhow!("a node panicked")))
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        let outcomes = outcomes
            .into_iter()
            .collect::<Result<Vec<_>, StoreError>>()?;
        let created = outcomes.iter().filter(|(_, changed)| *changed).count();
        assert_eq!(created, 1, "one node creates it: {outcomes:?}");
        assert!(
            outcomes.iter().all(|(id, _)| *id == outcomes[0].0),
            "every node answers with the same message: {outcomes:?}"
        );
    }
    Ok(())
}

/// A large audience goes through the sequencer the way it goes through a server on its own: stored once
/// for the events that share it, each event coming back (for the nodes to route) with its members.
#[test]
fn the_sequencer_stores_a_large_audience_once_and_returns_its_members() -> TestResult {
    let Some((db, _)) = fresh()? else {
        return Ok(());
    };
    let conversations = seed(&db, 1)?;
    let conversation = conversations[0].as_str();
    pg(&db)?.join_cluster("t", "n1")?;
    let mut session = open_session(&db, "n1")?;
    let members: Vec<String> = (0..=LARGE_AUDIENCE).map(|i| format!("u{i:03}")).collect();
    let mut shuffled = members.clone();
    shuffled.reverse();
    let smaller = &members[..LARGE_AUDIENCE];
    db.write(|tx| {
        tx.append_event("message.new", Some(conversation), &shuffled, &json!({}), 1)?;
        tx.append_event("message.new", Some(conversation), &members, &json!({}), 2)?;
        tx.append_event("message.new", Some(conversation), smaller, &json!({}), 3)
    })?;
    let mut sequenced = drain(&db, &mut session)?;
    // A later batch finds the audience stored by an earlier one.
    db.write(|tx| tx.append_event("message.new", Some(conversation), &members, &json!({}), 4))?;
    sequenced.extend(drain(&db, &mut session)?);
    let audiences: Vec<&[String]> = sequenced.iter().map(|e| e.audience.as_slice()).collect();
    assert_eq!(
        audiences,
        [&members[..], &members[..], smaller, &members[..]]
    );
    let ids: Vec<i64> = sequenced.iter().map(|e| e.id).collect();
    let seen = |user: &str| -> anyhow::Result<Vec<i64>> {
        let events = db.read(|r| r.events_since(user, 0, 10))?;
        Ok(events.iter().map(|e| e.id).collect())
    };
    assert_eq!(seen("u000")?, ids);
    assert_eq!(seen(&members[LARGE_AUDIENCE])?, [ids[0], ids[1], ids[3]]);
    let pg = pg(&db)?;
    let counts = pg.handle().block_on(async {
        let client = pg.pool().get().await?;
        let count = |table: &'static str| {
            let client = &client;
            async move {
                let row = client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await?;
                anyhow::Ok(row.get::<_, i64>(0))
            }
        };
        anyhow::Ok((
            count("audiences").await?,
            count("audience_members").await?,
            count("event_audience").await?,
        ))
    })?;
    let expected_members = i64::try_from(members.len())?;
    let expected_rows = i64::try_from(smaller.len())?;
    assert_eq!(counts, (1, expected_members, expected_rows));
    Ok(())
}
