//! Blocks: one way, once, listed per blocker, lifted.

use super::{TestDb, TestResult};
use crate::store::StoreError;

backend_tests!(TestDb: blocks_are_one_way_and_listed_per_blocker);

fn blocks_are_one_way_and_listed_per_blocker(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let first = t.db.write(|tx| tx.block_user("a", "b", 10))?;
    assert!(first.changed);
    assert_eq!(
        (
            first.value.blocker_id.as_str(),
            first.value.blocked.name.as_str(),
            first.value.created_at
        ),
        ("a", "B", 10)
    );
    let again = t.db.write(|tx| tx.block_user("a", "b", 11))?;
    assert_eq!((again.changed, again.value), (false, first.value.clone()));
    t.db.write(|tx| tx.block_user("a", "c", 12))?;
    t.db.write(|tx| tx.block_user("c", "a", 13))?;

    assert_eq!(t.db.read(|r| r.block("a", "b"))?, Some(first.value.clone()));
    assert_eq!(
        t.db.read(|r| r.block("b", "a"))?,
        None,
        "a block is one way"
    );
    let of_a: Vec<String> =
        t.db.read(|r| r.blocks_of("a"))?
            .into_iter()
            .map(|b| b.blocked.id)
            .collect();
    assert_eq!(of_a, ["b", "c"]);
    let of_c: Vec<String> =
        t.db.read(|r| r.blocks_of("c"))?
            .into_iter()
            .map(|b| b.blocked.id)
            .collect();
    assert_eq!(of_c, ["a"]);
    assert!(t.db.read(|r| r.blocks_of("b"))?.is_empty());

    let unknown = t.db.write(|tx| tx.block_user("a", "zed", 14));
    assert!(matches!(
        unknown,
        Err(StoreError::NotFound { what: "user", .. })
    ));

    assert_eq!(
        t.db.write(|tx| tx.unblock_user("a", "b"))?,
        Some(first.value)
    );
    assert_eq!(t.db.write(|tx| tx.unblock_user("a", "b"))?, None);
    assert_eq!(t.db.read(|r| r.block("a", "b"))?, None);
    Ok(())
}
