use std::cell::Cell;

use rusqlite::Connection;

use super::*;
use crate::store::StoreError;
use crate::store::records::ConversationPatch;
use crate::store::sqlite::conversations::update_conversation;
use crate::store::sqlite::participants::add_participants;
use crate::store::sqlite::receipts::mark_read;
use crate::store::sqlite::testutil::{TestDb, ids};

fn title(conversation: &Conversation) -> Option<&str> {
    conversation.title.as_deref()
}

#[test]
fn a_conversation_is_remembered_through_sends_and_reads_and_read_anew_after_any_other_change()
-> Result<()> {
    let test = TestDb::with_users(&["a", "b", "c"])?;
    let db = &test.db;
    let id = test.conversation(&["a", "b"])?.id;
    assert_eq!(db.conversation(&id)?.last_message_id, None);

    // Another process (the `sqlite3` shell) renames it: the hook does not see that, so a title that
    // stays old shows the conversation was remembered, not read.
    let shell = Connection::open(db.path())?;
    shell.execute(
        "UPDATE conversations SET title = 'shell' WHERE id = ?1",
        [&id],
    )?;

    // Sends and reads change only counters: still remembered, with the last message of the last send.
    let first = test.send(&id, "a", "one")?;
    let second = test.send(&id, "b", "two")?;
    db.write(|tx| mark_read(tx, &id, "a", None, 3))?;
    let remembered = db.conversation(&id)?;
    assert_eq!(title(&remembered), None);
    assert_eq!(
        remembered.last_message_id.as_deref(),
        Some(second.id.as_str())
    );
    assert_ne!(first.id, second.id);

    // A participant added is a change: read anew (and the shell's title with it).
    db.write(|tx| add_participants(tx, &id, &ids(&["c"]), 4))?;
    let read = db.conversation(&id)?;
    assert_eq!(title(&read), Some("shell"));
    assert_eq!(read.participant_ids, ids(&["a", "b", "c"]));
    assert_eq!(read.last_message_id.as_deref(), Some(second.id.as_str()));
    Ok(())
}

#[test]
fn a_conversation_read_before_a_change_committed_is_not_trusted_after_the_commit() -> Result<()> {
    let test = TestDb::with_users(&["a", "b"])?;
    let db = &test.db;
    let id = test.conversation(&["a", "b"])?.id;
    db.conversation(&id)?;
    let renamed = ConversationPatch {
        title: Some(Some("new".into())),
        metadata: None,
    };
    db.write(|tx| {
        update_conversation(tx, &id, &renamed, 5)?;
        // A send checked in the meantime reads the snapshot before the commit.
        assert_eq!(title(&db.conversation(&id)?), None);
        Ok(())
    })?;
    assert_eq!(title(&db.conversation(&id)?), Some("new"));
    Ok(())
}

#[test]
fn a_send_rolled_back_leaves_the_last_message_as_it_was() -> Result<()> {
    let test = TestDb::with_users(&["a", "b"])?;
    let db = &test.db;
    let id = test.conversation(&["a", "b"])?.id;
    let sent = test.send(&id, "a", "kept")?;
    assert_eq!(
        db.conversation(&id)?.last_message_id.as_deref(),
        Some(sent.id.as_str())
    );
    let failed = db.write(|tx| {
        let new = crate::store::records::NewMessage {
            conversation_id: id.clone(),
            sender_id: "b".into(),
            body: "rolled back".into(),
            ..Default::default()
        };
        crate::store::sqlite::messages::send_message(tx, &new, 6)?;
        Err::<(), _>(StoreError::Invalid("refused after the send".into()))
    });
    assert!(failed.is_err());
    assert_eq!(
        db.conversation(&id)?.last_message_id.as_deref(),
        Some(sent.id.as_str())
    );
    Ok(())
}

fn conversation(last_message: &str) -> Conversation {
    Conversation {
        id: "c".into(),
        title: None,
        admin_ids: Vec::new(),
        moderator_ids: Vec::new(),
        owner_id: None,
        participant_ids: ids(&["a", "b"]),
        participant_count: 2,
        participant_ids_omitted: false,
        distinct_by_participants: false,
        metadata: serde_json::json!({}),
        last_message_id: Some(last_message.into()),
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn a_read_that_a_commit_overtook_is_not_remembered() -> Result<()> {
    let cache = ConversationCache::default();
    let reads = Cell::new(0);
    let read = |last: &'static str| {
        let reads = &reads;
        move || {
            reads.set(reads.get() + 1);
            Ok(conversation(last))
        }
    };
    // A send commits while the conversation is read: what was read may predate it.
    let overtaken = cache.conversation("c", || {
        cache.last_message("c", "m2");
        cache.transaction_ended(true);
        read("m1")()
    })?;
    assert_eq!(overtaken.last_message_id.as_deref(), Some("m1"));
    assert_eq!(
        cache
            .conversation("c", read("m2"))?
            .last_message_id
            .as_deref(),
        Some("m2")
    );
    assert_eq!(reads.get(), 2);

    // Remembered now: a committed send patches it, a rolled back one does not.
    cache.last_message("c", "m3");
    cache.transaction_ended(true);
    let mark = cache.mark();
    cache.last_message("c", "m4");
    cache.rolled_back_to(mark);
    cache.transaction_ended(true);
    cache.last_message("c", "m5");
    cache.transaction_ended(false);
    assert_eq!(
        cache
            .conversation("c", read("x"))?
            .last_message_id
            .as_deref(),
        Some("m3")
    );
    assert_eq!(reads.get(), 2);

    // A structural change in a transaction, even one rolled back, makes it read anew.
    cache.row_changed("participants");
    cache.transaction_ended(false);
    assert_eq!(
        cache
            .conversation("c", read("m3"))?
            .last_message_id
            .as_deref(),
        Some("m3")
    );
    assert_eq!(reads.get(), 3);
    // Counters and other tables do not; a counter statement that panicked leaves changes counting.
    cache.counting(|| cache.row_changed("participants"));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.counting(|| panic!("a counter statement panicked"))
    }));
    assert!(panicked.is_err());
    assert!(!cache.counting.load(Ordering::SeqCst));
    cache.row_changed("messages");
    cache.transaction_ended(true);
    cache.conversation("c", read("m3"))?;
    assert_eq!(reads.get(), 3);
    Ok(())
}

#[test]
fn a_full_memory_starts_over_and_missing_conversations_are_not_remembered() -> Result<()> {
    let cache = ConversationCache::default();
    let reads = Cell::new(0);
    for _ in 0..2 {
        let missing = cache.conversation("nope", || {
            reads.set(reads.get() + 1);
            Err(StoreError::not_found("conversation", "nope"))
        });
        assert!(missing.is_err());
    }
    assert_eq!(reads.get(), 2);
    for n in 0..=MAX_ENTRIES {
        cache.conversation(&n.to_string(), || Ok(conversation("m")))?;
    }
    let entries = lock(&cache.entries);
    assert_eq!(entries.by_id.len(), 1, "started over when full");
    assert_eq!(entries.participants, 2);
    Ok(())
}
