//! Reactions: one per message, user and emoji.

use super::{TestDb, TestResult};
use crate::store::StoreError;

backend_tests!(TestDb: reactions_are_unique_per_message_user_emoji);

fn reactions_are_unique_per_message_user_emoji(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let m = t.send(&conv.id, "a", "hi")?;
    // Whether (user, emoji) is on the message: adding it again changes nothing and answers with the
    // reaction as first stored, so this looks without touching.
    let held = |user: &str, emoji: &str| -> anyhow::Result<Option<i64>> {
        let again = t.db.write(|tx| tx.add_reaction(&m.id, user, emoji, 99))?;
        Ok((!again.changed).then_some(again.value.created_at))
    };
    assert!(
        t.db.write(|tx| tx.add_reaction(&m.id, "b", "👍", 1))?
            .changed
    );
    let again = t.db.write(|tx| tx.add_reaction(&m.id, "b", "👍", 2))?;
    assert!(!again.changed);
    assert_eq!(again.value.created_at, 1);
    assert!(
        t.db.write(|tx| tx.add_reaction(&m.id, "a", "👍", 3))?
            .changed
    );
    assert!(
        t.db.write(|tx| tx.add_reaction(&m.id, "b", ":tada:", 4))?
            .changed
    );
    assert_eq!(
        (held("b", "👍")?, held("a", "👍")?, held("b", ":tada:")?),
        (Some(1), Some(3), Some(4))
    );

    let removed = t.db.write(|tx| tx.remove_reaction(&m.id, "b", "👍"))?;
    assert_eq!(removed.map(|r| r.user.id), Some("b".to_owned()));
    assert!(
        t.db.write(|tx| tx.remove_reaction(&m.id, "b", "👍"))?
            .is_none()
    );
    // The other two stay; b's 👍 is gone (looking adds it back, so it is looked at last).
    assert_eq!(
        (held("a", "👍")?, held("b", ":tada:")?, held("b", "👍")?),
        (Some(3), Some(4), None)
    );
    assert!(matches!(
        t.db.write(|tx| tx.add_reaction(&m.id, "b", "", 5)),
        Err(StoreError::Invalid(_))
    ));
    Ok(())
}
