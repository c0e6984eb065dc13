//! Membership: adding (once each, known users only), admins, listing, removing.

use super::{TestDb, TestResult, ids};
use crate::store::StoreError;

backend_tests!(TestDb: add_remove_and_admins);

fn add_remove_and_admins(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let conv = t.conversation(&["a", "b"])?;
    t.send(&conv.id, "a", "before c joined")?;
    let added =
        t.db.write(|tx| tx.add_participants(&conv.id, &ids(&["b", "c", "c"]), 10))?;
    assert_eq!(added, ids(&["c"]));
    let c = t.db.read(|r| r.participant(&conv.id, "c"))?;
    assert_eq!(c.map(|p| (p.is_admin, p.unread_count)), Some((false, 0)));
    let unknown =
        t.db.write(|tx| tx.add_participants(&conv.id, &ids(&["zed"]), 10));
    assert!(matches!(unknown, Err(StoreError::NotFound { .. })));

    let a = t.db.read(|r| r.participant(&conv.id, "a"))?;
    assert_eq!(a.map(|p| p.is_admin), Some(true));
    let all: Vec<(String, bool)> =
        t.db.read(|r| r.participants(&conv.id))?
            .into_iter()
            .map(|p| (p.user.id, p.is_admin))
            .collect();
    let expected =
        [("a", true), ("b", false), ("c", false)].map(|(id, admin)| (id.to_owned(), admin));
    assert_eq!(all, expected);
    assert_eq!(
        t.db.read(|r| r.get_conversation(&conv.id))?.admin_ids,
        ids(&["a"])
    );

    assert!(t.db.write(|tx| tx.remove_participant(&conv.id, "c", 12))?);
    assert!(!t.db.write(|tx| tx.remove_participant(&conv.id, "c", 13))?);
    assert!(!t.db.read(|r| r.is_participant(&conv.id, "c"))?);
    let conversation = t.db.read(|r| r.get_conversation(&conv.id))?;
    assert_eq!(
        (conversation.participant_count, conversation.updated_at),
        (2, 12)
    );
    Ok(())
}
