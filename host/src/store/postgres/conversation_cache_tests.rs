//! The conversations a server on its own remembers on PostgreSQL ([`crate::store::conversation_cache`]),
//! against a real server: a change its writes make is seen at once, a send only patches the last message,
//! and a server that has not claimed the database remembers nothing. Skips without PostgreSQL, unless
//! `CHATHOOKS_REQUIRE_POSTGRES=1`.

use chathooks_testservers::Postgres;

use super::db_tests::{test_pool, user};
use crate::store::records::ConversationPatch;
use crate::store::{Db, Durability, NewConversation, NewMessage, StoreError};

type TestResult = anyhow::Result<()>;

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|id| (*id).to_owned()).collect()
}

/// A fresh database with users `a`, `b` and `c` and a conversation of `a` and `b`, and its id; claimed
/// (the database's only server) if `claim`.
fn conversation_of_a_and_b(claim: bool) -> anyhow::Result<Option<(Db, String)>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let url = pg.url_for_new_database()?;
    let db = Db::connect(&url, Durability::Process, test_pool())?;
    if claim && let Some(pg_db) = db.as_postgres() {
        pg_db.claim()?;
    }
    db.write(|tx| {
        for id in ["a", "b", "c"] {
            tx.create_user(&user(id), 1)?;
        }
        Ok(())
    })?;
    let new = NewConversation {
        participant_ids: ids(&["a", "b"]),
        admin_ids: ids(&["a"]),
        ..Default::default()
    };
    let id = db.write(|tx| tx.create_conversation(&new, 2))?.value.id;
    Ok(Some((db, id)))
}

/// Renames conversation `id` behind the server's back, as `psql` would.
fn rename_outside(db: &Db, id: &str, title: &str) -> anyhow::Result<()> {
    let Some(pg_db) = db.as_postgres() else {
        anyhow::bail!("not PostgreSQL");
    };
    pg_db.handle().block_on(async {
        let client = pg_db.pool().get().await?;
        client
            .execute(
                "UPDATE conversations SET title = $2 WHERE id = $1",
                &[&id, &title],
            )
            .await?;
        anyhow::Ok(())
    })
}

fn send(db: &Db, id: &str, sender: &str, body: &str) -> anyhow::Result<String> {
    let new = NewMessage {
        conversation_id: id.to_owned(),
        sender_id: sender.to_owned(),
        body: body.to_owned(),
        ..Default::default()
    };
    Ok(db.write(|tx| tx.send_message(&new, 3))?.value.id)
}

#[test]
fn a_server_on_its_own_remembers_a_conversation_until_its_writes_change_more_than_counters()
-> TestResult {
    let Some((db, id)) = conversation_of_a_and_b(true)? else {
        return Ok(());
    };
    assert_eq!(db.conversation(&id)?.last_message_id, None);
    // A change behind the server's back: a title that stays old shows the conversation was remembered.
    rename_outside(&db, &id, "outside")?;

    // Sends and reads move counters only: still remembered, with the last message of the last send.
    let first = send(&db, &id, "a", "one")?;
    let second = send(&db, &id, "b", "two")?;
    db.write(|tx| tx.mark_read(&id, "a", None, 4))?;
    let remembered = db.conversation(&id)?;
    assert_eq!(remembered.title, None);
    assert_eq!(remembered.last_message_id.as_deref(), Some(second.as_str()));
    assert_ne!(first, second);

    // A participant added: read anew, the outside title with it.
    db.write(|tx| tx.add_participants(&id, &ids(&["c"]), 5))?;
    let read = db.conversation(&id)?;
    assert_eq!(read.title.as_deref(), Some("outside"));
    assert_eq!(read.participant_ids, ids(&["a", "b", "c"]));
    assert_eq!(read.last_message_id.as_deref(), Some(second.as_str()));

    // Each further change is seen at the next look.
    let renamed = ConversationPatch {
        title: Some(Some("renamed".to_owned())),
        metadata: None,
    };
    db.write(|tx| tx.update_conversation(&id, &renamed, 6))?;
    assert_eq!(db.conversation(&id)?.title.as_deref(), Some("renamed"));
    db.write(|tx| tx.remove_participant(&id, "b", 7))?;
    assert_eq!(db.conversation(&id)?.participant_ids, ids(&["a", "c"]));
    db.write(|tx| tx.delete_conversation(&id))?;
    assert!(matches!(
        db.conversation(&id),
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

#[test]
fn a_send_rolled_back_leaves_the_remembered_last_message_as_it_was() -> TestResult {
    let Some((db, id)) = conversation_of_a_and_b(true)? else {
        return Ok(());
    };
    let kept = send(&db, &id, "a", "kept")?;
    assert_eq!(
        db.conversation(&id)?.last_message_id.as_deref(),
        Some(kept.as_str())
    );
    let new = NewMessage {
        conversation_id: id.clone(),
        sender_id: "b".to_owned(),
        body: "rolled back".to_owned(),
        ..Default::default()
    };
    let failed = db.write(|tx| {
        tx.send_message(&new, 8)?;
        Err::<(), _>(StoreError::Invalid("refused after the send".to_owned()))
    });
    assert!(failed.is_err());
    assert_eq!(
        db.conversation(&id)?.last_message_id.as_deref(),
        Some(kept.as_str())
    );
    Ok(())
}

#[test]
fn a_server_that_has_not_claimed_the_database_reads_every_time() -> TestResult {
    let Some((db, id)) = conversation_of_a_and_b(false)? else {
        return Ok(());
    };
    assert_eq!(db.conversation(&id)?.title, None);
    rename_outside(&db, &id, "outside")?;
    assert_eq!(db.conversation(&id)?.title.as_deref(), Some("outside"));
    Ok(())
}
