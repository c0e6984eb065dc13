//! Bans: recorded once, listed, found among a list, lifted; deleted with their conversation.

use super::{TestDb, TestResult, ids};
use crate::store::{NewBan, StoreError};

backend_tests!(TestDb: bans_are_kept_listed_and_lifted, deleting_a_conversation_deletes_its_bans);

fn ban_of(conversation_id: &str, user: &str, reason: Option<&str>) -> NewBan {
    NewBan {
        conversation_id: conversation_id.to_owned(),
        user_id: user.to_owned(),
        banned_by: "a".to_owned(),
        reason: reason.map(str::to_owned),
    }
}

fn bans_are_kept_listed_and_lifted(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c", "d"])?;
    let conv = t.conversation(&["a", "b", "c"])?;
    let other = t.conversation(&["a", "b"])?;
    let first =
        t.db.write(|tx| tx.add_ban(&ban_of(&conv.id, "b", Some("spam")), 10))?;
    assert!(first.changed);
    assert_eq!(
        (
            first.value.user.id.as_str(),
            first.value.user.name.as_str(),
            first.value.banned_by.as_str(),
            first.value.reason.as_deref(),
            first.value.created_at
        ),
        ("b", "B", "a", Some("spam"), 10)
    );
    // Banning again keeps the first ban.
    let again =
        t.db.write(|tx| tx.add_ban(&ban_of(&conv.id, "b", Some("other")), 11))?;
    assert_eq!((again.changed, again.value), (false, first.value.clone()));
    // A user who is not a member can be banned (kept out before being added).
    t.db.write(|tx| tx.add_ban(&ban_of(&conv.id, "d", None), 12))?;

    let listed: Vec<String> =
        t.db.read(|r| r.bans(&conv.id))?
            .into_iter()
            .map(|b| b.user.id)
            .collect();
    assert_eq!(listed, ids(&["b", "d"]));
    assert_eq!(
        t.db.read(|r| r.banned_among(&conv.id, &ids(&["c", "d", "b", "d"])))?,
        ids(&["d", "b"])
    );
    assert!(
        t.db.read(|r| r.banned_among(&other.id, &ids(&["b"])))?
            .is_empty()
    );
    assert_eq!(
        t.db.read(|r| r.ban(&conv.id, "b"))?,
        Some(first.value.clone())
    );
    assert_eq!(t.db.read(|r| r.ban(&other.id, "b"))?, None);

    let unknown =
        t.db.write(|tx| tx.add_ban(&ban_of(&conv.id, "zed", None), 13));
    assert!(matches!(
        unknown,
        Err(StoreError::NotFound { what: "user", .. })
    ));
    let nowhere =
        t.db.write(|tx| tx.add_ban(&ban_of("c_missing", "b", None), 13));
    assert!(matches!(
        nowhere,
        Err(StoreError::NotFound {
            what: "conversation",
            ..
        })
    ));

    assert_eq!(
        t.db.write(|tx| tx.remove_ban(&conv.id, "b"))?,
        Some(first.value)
    );
    assert_eq!(t.db.write(|tx| tx.remove_ban(&conv.id, "b"))?, None);
    assert_eq!(
        t.db.read(|r| r.banned_among(&conv.id, &ids(&["b", "d"])))?,
        ids(&["d"])
    );
    Ok(())
}

fn deleting_a_conversation_deletes_its_bans(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a"])?;
    t.db.write(|tx| tx.add_ban(&ban_of(&conv.id, "b", None), 10))?;
    t.db.write(|tx| tx.delete_conversation(&conv.id))?;
    assert!(t.db.read(|r| r.bans(&conv.id))?.is_empty());
    assert_eq!(t.db.read(|r| r.ban(&conv.id, "b"))?, None);
    Ok(())
}
