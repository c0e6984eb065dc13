//! [`Db`] on PostgreSQL through the seam, against a real server: one scenario run on both backends (so
//! what it asserts holds alike), what only PostgreSQL does (NUL characters, collation), and the writer
//! mutex under concurrent writers. Plain `#[test]`s: the store blocks, and must not be called from async
//! code. Each test skips when PostgreSQL is not installed, unless `CHATHOOKS_REQUIRE_POSTGRES=1`.

use std::sync::{Arc, Mutex};

use chathooks_testservers::Postgres;
use serde_json::json;

use crate::model::Message;
use crate::store::{
    Db, Durability, NewConversation, NewMessage, NewUser, Outcome, PoolOptions, StartedRow,
    StoreError,
};

type TestResult = anyhow::Result<()>;

/// A small pool: tests run side by side on one server.
pub(super) fn test_pool() -> PoolOptions {
    PoolOptions {
        size: 4,
        ..PoolOptions::default()
    }
}

/// A fresh, migrated database on the shared test server; `None` (the test skips) without PostgreSQL.
fn fresh_db() -> anyhow::Result<Option<Db>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let url = pg.url_for_new_database()?;
    Ok(Some(Db::connect(&url, Durability::Process, test_pool())?))
}

fn ids<const N: usize>(list: [&str; N]) -> Vec<String> {
    list.map(str::to_owned).to_vec()
}

pub(super) fn user(id: &str) -> NewUser {
    NewUser {
        id: id.to_owned(),
        name: id.to_uppercase(),
        metadata: json!({"nul": "a\u{0}b"}),
    }
}

/// Sends `body` as the chat layer does: the message and, if it is new, its event, in one transaction.
fn send(
    db: &Db,
    conversation: &str,
    audience: &[String],
    body: &str,
    client_id: Option<&str>,
) -> anyhow::Result<(Outcome<Message>, Option<i64>)> {
    let new = NewMessage {
        conversation_id: conversation.to_owned(),
        sender_id: "alice".to_owned(),
        body: body.to_owned(),
        mentions: ids(["bob", "ghost"]),
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    };
    Ok(db.write(|tx| {
        let sent = tx.send_message(&new, 10)?;
        let event = match sent.changed {
            true => Some(tx.append_event(
                "message.new",
                Some(conversation),
                audience,
                &json!({"id": sent.value.id}),
                10,
            )?),
            false => None,
        };
        Ok((sent, event))
    })?)
}

/// Users, a conversation, an idempotent send, the event log, deliveries, dead letters and timers: what
/// every backend must answer alike.
fn round_trips(db: &Db) -> TestResult {
    db.write(|tx| {
        for id in ["alice", "bob", "Zed"] {
            tx.create_user(&user(id), 1)?;
        }
        Ok(())
    })?;
    // A NUL inside JSON metadata round-trips.
    assert_eq!(
        db.read(|r| r.get_user("alice"))?.metadata,
        json!({"nul": "a\u{0}b"})
    );
    let duplicate = db.write(|tx| tx.create_user(&user("alice"), 2)).err();
    assert!(
        matches!(&duplicate, Some(StoreError::Conflict(m)) if m == "user \"alice\" already exists"),
        "{duplicate:?}"
    );
    // Byte order, as SQLite compares text: "Zed" before "alice".
    let accounts = db.read(|r| r.list_accounts(None, 10))?;
    let order: Vec<&str> = accounts.iter().map(|a| a.user.id.as_str()).collect();
    assert_eq!(order, ["Zed", "alice", "bob"]);

    let new = NewConversation {
        participant_ids: ids(["alice", "bob"]),
        admin_ids: ids(["alice"]),
        ..Default::default()
    };
    let conv = db.write(|tx| tx.create_conversation(&new, 3))?.value;
    let other = db.write(|tx| tx.create_conversation(&new, 3))?.value;
    let members = conv.participant_ids.clone();
    assert_eq!(
        (members.clone(), conv.admin_ids.clone()),
        (ids(["alice", "bob"]), ids(["alice"]))
    );

    // Idempotent send: the same client_id twice is one message and one event.
    let (first, e1) = send(db, &conv.id, &members, "hi @bob", Some("k1"))?;
    let (again, none) = send(db, &conv.id, &members, "hi again", Some("k1"))?;
    assert!(first.changed && !again.changed && none.is_none());
    assert_eq!(
        (
            again.value.id.as_str(),
            again.value.body.as_str(),
            again.value.seq
        ),
        (first.value.id.as_str(), "hi @bob", 1)
    );
    assert_eq!(first.value.mentions, ids(["bob"]));
    let elsewhere = send(db, &other.id, &members, "x", Some("k1")).err();
    let elsewhere = elsewhere.and_then(|e| e.downcast::<StoreError>().ok());
    assert!(
        matches!(elsewhere, Some(StoreError::Conflict(_))),
        "{elsewhere:?}"
    );
    let (second, e2) = send(db, &conv.id, &members, "second", None)?;
    let (Some(e1), Some(e2)) = (e1, e2) else {
        anyhow::bail!("new messages have events");
    };
    assert_eq!(second.value.seq, 2);
    assert_eq!(db.read(|r| r.unread_count(&conv.id, "bob"))?, 2);
    let listed = db.read(|r| r.list_for_user("bob", 10))?;
    assert_eq!(
        (
            listed.len(),
            listed[0].unread_count,
            listed[0].conversation.id.as_str()
        ),
        (2, 2, conv.id.as_str())
    );

    // The event log, by audience.
    let seen: Vec<i64> = db
        .read(|r| r.events_since("bob", 0, 100))?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(seen, [e1, e2]);
    assert!(db.read(|r| r.events_since("Zed", 0, 100))?.is_empty());
    let event = db.read(|r| r.get_event(e1))?;
    assert_eq!(
        (event.audience, event.payload),
        (members.clone(), json!({"id": first.value.id}))
    );
    assert_eq!(db.read(|r| r.latest_event_id())?, e2);

    // Deliveries: fan out, the head-of-queue rule, success, failure, retry.
    let pending = db.read(|r| r.pending_events(10))?;
    assert_eq!(pending.len(), 2);
    for event in &pending {
        db.write(|tx| tx.fan_out_event(event, &ids(["p"]), 20))?;
    }
    assert_eq!(db.read(|r| r.outbox_depth())?, 0);
    assert_eq!(db.read(|r| r.backlog())?, [("p".to_owned(), 2)]);
    assert_eq!(db.write(|tx| tx.start_head(e2, "p", 20))?, None);
    let started = db.write(|tx| tx.start_head(e1, "p", 20))?;
    assert_eq!(started.map(|s| s.attempt), Some(1));
    assert!(db.write(|tx| tx.delivery_succeeded(e1, "p"))?);
    assert!(db.write(|tx| tx.start_head(e2, "p", 20))?.is_some());
    db.write(|tx| tx.delivery_failed(e2, "p", "boom", 30))?;
    assert_eq!(db.write(|tx| tx.start_head(e2, "p", 29))?, None);
    let retry = db.write(|tx| tx.start_head(e2, "p", 30))?;
    let expected = StartedRow {
        attempt: 2,
        next_attempt_at: 30,
        last_error: Some("boom".to_owned()),
        leased_until: None,
    };
    assert_eq!(retry, Some(expected));

    // Dead letter, then replay: back at the head of its queue with its attempts.
    let letter = db.write(|tx| tx.dead_letter(e2, "p", "gave up", 40))?;
    let letters = db.read(|r| r.dead_letters(0, 10))?;
    assert_eq!(
        (
            letters.len(),
            letters[0].id,
            letters[0].attempts,
            letters[0].last_error.as_str()
        ),
        (1, letter, 2, "gave up")
    );
    assert!(db.read(|r| r.backlog())?.is_empty());
    db.write(|tx| tx.replay_dead_letter(letter, 50))?;
    assert_eq!(db.read(|r| r.dead_letter_count())?, 0);
    let queue = db.read(|r| r.delivery_queue("p", &conv.id))?;
    assert_eq!(
        queue
            .iter()
            .map(|q| (q.event_id, q.next_attempt_at, q.in_flight))
            .collect::<Vec<_>>(),
        [(e2, 50, false)]
    );
    assert_eq!(
        db.write(|tx| tx.start_head(e2, "p", 50))?
            .map(|s| s.attempt),
        Some(3)
    );

    // Timers: due order, and a firing never undoes a timer set again meanwhile.
    db.write(|tx| tx.set_timer("p", "a", 100, None, "x", 1))?;
    db.write(|tx| tx.set_timer("p", "b", 50, Some(1000), "y", 1))?;
    let due = db.read(|r| r.due_timers(100, 10))?;
    assert_eq!(
        due.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert_eq!(db.read(|r| r.next_timer_due())?, Some(50));
    db.write(|tx| tx.set_timer("p", "a", 500, None, "z", 2))?;
    assert!(!db.write(|tx| tx.finish_firing(&due[1], None, 0))?);
    assert!(db.write(|tx| tx.finish_firing(&due[0], Some(1050), 0))?);
    let left = db.read(|r| r.timers_of("p"))?;
    assert_eq!((left[0].payload.as_str(), left[1].due_at), ("z", 1050));

    // Reading everything clears the unread count and writes receipts.
    let read = db.write(|tx| tx.mark_read(&conv.id, "bob", None, 60))?;
    assert_eq!(
        (read.newly_read.len(), read.unread_count, read.last_read_seq),
        (2, 0, 2)
    );
    let status = db.read(|r| r.get_message(&first.value.id))?.status;
    assert_eq!(status, crate::model::MessageStatus::AllRead);
    Ok(())
}

#[test]
fn the_round_trips_answer_alike_on_sqlite() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("chat.db");
    let db = Db::connect(&path.to_string_lossy(), Durability::Process, test_pool())?;
    assert!(db.as_sqlite().is_some());
    round_trips(&db)
}

#[test]
fn the_round_trips_answer_alike_on_postgres() -> TestResult {
    let Some(db) = fresh_db()? else {
        return Ok(());
    };
    assert!(db.as_sqlite().is_none() && db.as_postgres().is_some());
    round_trips(&db)
}

#[test]
fn a_nul_in_a_stored_text_field_is_invalid_naming_the_field() -> TestResult {
    let Some(db) = fresh_db()? else {
        return Ok(());
    };
    db.write(|tx| tx.create_user(&user("alice"), 1))?;
    let named = NewUser {
        name: "a\0b".to_owned(),
        ..user("bob")
    };
    let err = db.write(|tx| tx.create_user(&named, 1)).err();
    assert!(
        matches!(&err, Some(StoreError::Invalid(m)) if m.starts_with("name must not contain")),
        "{err:?}"
    );
    let conv = db.write(|tx| {
        tx.create_conversation(
            &NewConversation {
                participant_ids: ids(["alice"]),
                ..Default::default()
            },
            1,
        )
    })?;
    let new = NewMessage {
        conversation_id: conv.value.id.clone(),
        sender_id: "alice".to_owned(),
        body: "a\0b".to_owned(),
        ..Default::default()
    };
    let err = db.write(|tx| tx.send_message(&new, 2)).err();
    assert!(
        matches!(&err, Some(StoreError::Invalid(m)) if m.starts_with("body must not contain")),
        "{err:?}"
    );
    // The transaction is rolled back whole and the database is fine afterwards; a NUL in a lookup is
    // Invalid too, not a server fault.
    assert_eq!(db.read(|r| r.latest_event_id())?, 0);
    let lookup = db.read(|r| r.get_user("a\0b")).err();
    assert!(matches!(lookup, Some(StoreError::Invalid(_))), "{lookup:?}");
    // Diagnostics the server records keep what they can.
    let event = db.write(|tx| tx.append_event("x", None, &ids(["alice"]), &json!({}), 3))?;
    db.write(|tx| tx.fan_out(event, &ids(["p"]), 3))?;
    db.write(|tx| tx.delivery_failed(event, "p", "bad\0byte", 4))?;
    let due = db.read(|r| r.next_deliveries(4, &ids(["p"]), 10))?;
    assert_eq!(due[0].last_error.as_deref(), Some("bad\u{FFFD}byte"));
    Ok(())
}

#[test]
fn the_writer_mutex_keeps_event_ids_in_commit_order() -> TestResult {
    const WRITERS: usize = 8;
    const WRITES: usize = 25;
    let Some(db) = fresh_db()? else {
        return Ok(());
    };
    db.write(|tx| tx.create_user(&user("alice"), 1).map(|_| ()))?;
    let audience = ids(["alice"]);
    // What live subscribers would see, in the order after_commit ran.
    let published = Arc::new(Mutex::new(Vec::new()));
    let done = std::sync::atomic::AtomicBool::new(false);
    let violations = std::thread::scope(|s| {
        for writer in 0..WRITERS {
            let (db, published, audience) = (&db, &published, &audience);
            s.spawn(move || {
                for _ in 0..WRITES {
                    let written = db.write_then(
                        |tx| {
                            let conversation = format!("c{}", writer % 4);
                            tx.append_event("x", Some(&conversation), audience, &json!({}), 1)
                        },
                        |id| {
                            let (published, id) = (Arc::clone(published), *id);
                            Some(Box::new(move || {
                                published.lock().unwrap_or_else(|p| p.into_inner()).push(id)
                            }))
                        },
                    );
                    assert!(written.is_ok(), "{written:?}");
                }
            });
        }
        // A reader resuming from what it saw: an id below the newest it saw must never appear later.
        let reader = s.spawn(|| -> anyhow::Result<usize> {
            let mut seen = Vec::new();
            let mut violations = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let now: Vec<i64> = db
                    .read(|r| r.events_since("alice", 0, 1000))?
                    .iter()
                    .map(|e| e.id)
                    .collect();
                if now.get(..seen.len()) != Some(&seen[..]) {
                    violations += 1;
                }
                seen = now;
            }
            Ok(violations)
        });
        s.spawn(|| {
            while published.lock().map_or(0, |p| p.len()) < WRITERS * WRITES {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        reader.join()
    });
    let violations = violations.map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    assert_eq!(
        violations, 0,
        "a reader saw an older id appear after a newer one"
    );
    let published = std::mem::take(&mut *published.lock().unwrap_or_else(|p| p.into_inner()));
    assert_eq!(published.len(), WRITERS * WRITES);
    assert!(
        published.windows(2).all(|w| w[0] < w[1]),
        "published out of order: {published:?}"
    );
    Ok(())
}

#[test]
fn a_write_without_events_does_not_wait_for_the_writer_and_may_not_append_one() -> TestResult {
    let Some(db) = fresh_db()? else {
        return Ok(());
    };
    db.write(|tx| tx.create_user(&user("alice"), 1).map(|_| ()))?;
    let audience = ids(["alice"]);
    // Events commit in id order only where this server is the database's only one.
    assert!(!db.read(|r| Ok(r.events_commit_in_id_order()))?);
    db.claim()?;
    assert!(db.read(|r| Ok(r.events_commit_in_id_order()))?);

    // A write that appends an event holds the writer mutex until it is released.
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release_tx, release) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| -> TestResult {
        let (db, audience) = (&db, &audience);
        let held = s.spawn(move || {
            db.write(|tx| {
                let id = tx.append_event("x", Some("c1"), audience, &json!({}), 1)?;
                let _ = entered_tx.send(());
                let _ = release.recv();
                Ok(id)
            })
        });
        entered.recv()?;
        // Meanwhile a write of deliveries and outbox rows goes through, and one that appends is refused.
        let (prompt_tx, prompt) = std::sync::mpsc::channel();
        s.spawn(move || {
            let cleared = db.write_deliveries(|tx| tx.leave_outbox(&[]));
            let appended = db.as_postgres().map(|pg| {
                pg.write_without_events(|tx| {
                    tx.append_event("x", Some("c1"), audience, &json!({}), 1)
                })
            });
            let _ = prompt_tx.send((cleared, appended));
        });
        // Only a failing build waits this long (it would wait for ever without the release below).
        let answered = prompt.recv_timeout(std::time::Duration::from_secs(60));
        release_tx.send(())?;
        let (cleared, appended) = answered
            .map_err(|_| anyhow::anyhow!("a write of deliveries waited for the writer mutex"))?;
        cleared?;
        let refused = appended.and_then(Result::err);
        assert!(
            matches!(&refused, Some(StoreError::Invalid(why)) if why.contains("Db::write")),
            "{refused:?}"
        );
        let id = held
            .join()
            .map_err(|_| anyhow::anyhow!("the held write panicked"))??;
        assert_eq!(db.read(|r| r.latest_event_id())?, id);
        Ok(())
    })
}

#[test]
fn location_and_errors_show_the_setting_without_its_password() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let database = pg.create_database()?;
    // Trust authentication ignores the password; it is here to be hidden.
    let setting = format!("{} password=s3cret-pw", pg.conninfo(&database));
    let db = Db::connect(&setting, Durability::Power, test_pool())?;
    assert!(db.location().ends_with("password=***"), "{}", db.location());
    assert!(!format!("{db:?}").contains("s3cret-pw"));
    // Durability reaches every session (the test server's own default is `off`).
    assert_eq!(synchronous_commit(&db)?, "on");
    let quick = Db::connect(&pg.url(&database), Durability::Process, test_pool())?;
    assert_eq!(synchronous_commit(&quick)?, "off");
    // A database that does not exist: the error names the setting, redacted.
    let missing = pg
        .url("no_such_db")
        .replacen("postgres@", "postgres:s3cret-pw@", 1);
    let err = Db::connect(&missing, Durability::Process, test_pool()).err();
    let shown = format!(
        "{err:?} {}",
        err.as_ref().map(ToString::to_string).unwrap_or_default()
    );
    assert!(err.is_some() && !shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains("postgres:***@"), "{shown}");
    Ok(())
}

/// `SHOW synchronous_commit` in a session of `db`'s pool.
fn synchronous_commit(db: &Db) -> anyhow::Result<String> {
    let pg = db
        .as_postgres()
        .ok_or_else(|| anyhow::anyhow!("not PostgreSQL"))?;
    pg.handle().block_on(async {
        let client = pg.pool().get().await?;
        let row = client.query_one("SHOW synchronous_commit", &[]).await?;
        Ok(row.try_get(0)?)
    })
}

/// How long one send (`send_message` plus its event, one transaction) takes on each backend, measured
/// through the seam. Not run by default; `cargo test -p chathooks --lib send_timing -- --ignored
/// --nocapture` prints it.
#[test]
#[ignore = "a measurement, not a check"]
fn send_timing() -> TestResult {
    const SENDS: usize = 500;
    let Some(pg) = fresh_db()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let sqlite = Db::open(dir.path().join("chat.db"))?;
    for (name, db) in [("sqlite", &sqlite), ("postgres", &pg)] {
        db.write(|tx| {
            tx.create_user(&user("alice"), 1)?;
            tx.create_user(&user("bob"), 1).map(|_| ())
        })?;
        let new = NewConversation {
            participant_ids: ids(["alice", "bob"]),
            ..Default::default()
        };
        let conv = db.write(|tx| tx.create_conversation(&new, 1))?.value;
        let mut took = Vec::with_capacity(SENDS);
        for i in 0..SENDS {
            let client_id = format!("k{i}");
            let started = std::time::Instant::now();
            send(
                db,
                &conv.id,
                &conv.participant_ids,
                "hello @bob",
                Some(&client_id),
            )?;
            took.push(started.elapsed());
        }
        took.sort();
        let mean = took.iter().sum::<std::time::Duration>() / u32::try_from(SENDS)?;
        eprintln!(
            "{name}: one send transaction: mean {mean:?}, p50 {:?}, p99 {:?} ({SENDS} sends)",
            took[SENDS / 2],
            took[SENDS * 99 / 100]
        );
    }
    Ok(())
}

/// The server's way in: store calls on `spawn_blocking` threads of the server's runtime, and the database
/// dropped in async code when the server's state goes (which must not block or panic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_spawn_blocking_and_drops_in_async_code() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let url = pg.url_for_new_database()?;
    let db =
        tokio::task::spawn_blocking(move || Db::connect(&url, Durability::Process, test_pool()))
            .await??;
    let db = std::sync::Arc::new(db);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let db = std::sync::Arc::clone(&db);
            tokio::task::spawn_blocking(move || {
                db.write(|tx| tx.create_user(&user(&format!("u{i}")), 1))?;
                db.read(|r| r.list_accounts(None, 100))
            })
        })
        .collect();
    for call in calls {
        call.await??;
    }
    let all = tokio::task::spawn_blocking({
        let db = std::sync::Arc::clone(&db);
        move || db.read(|r| r.list_accounts(None, 100))
    })
    .await??;
    assert_eq!(all.len(), 8);
    drop(db);
    Ok(())
}

/// A node on its own reports how long its writer mutex was held (`/metrics`), as SQLite does its writer.
#[test]
fn a_single_node_counts_the_time_its_writer_mutex_is_held() -> anyhow::Result<()> {
    let Some(db) = fresh_db()? else {
        return Ok(());
    };
    let before = db
        .writer_busy()
        .ok_or_else(|| anyhow::anyhow!("no writer busy time"))?;
    db.write(|tx| tx.create_user(&user("alice"), 1))?;
    let after = db
        .writer_busy()
        .ok_or_else(|| anyhow::anyhow!("no writer busy time"))?;
    assert!(after > before, "{before:?} then {after:?}");
    Ok(())
}
