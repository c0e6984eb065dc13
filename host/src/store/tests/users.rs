//! Users: created once, ids checked, the bot namespace kept for bot users, deactivation, paging.

use super::{TestDb, TestResult};
use crate::model::UserAccount;
use crate::store::{NewUser, StoreError};

backend_tests!(TestDb:
    users_are_created_once_and_ids_are_checked,
    the_bot_namespace_is_for_bot_users_only,
    deactivation_keeps_its_first_time_and_lists_page_by_id,
);

fn new_user(id: &str) -> NewUser {
    NewUser {
        id: id.into(),
        name: id.to_uppercase(),
        metadata: serde_json::json!({"a": 1}),
    }
}

fn users_are_created_once_and_ids_are_checked(t: TestDb) -> TestResult {
    let alice = t.db.write(|tx| tx.create_user(&new_user("alice"), 1))?;
    assert_eq!(alice.name, "ALICE");
    assert!(matches!(
        t.db.write(|tx| tx.create_user(&new_user("alice"), 3)),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        t.db.write(|tx| tx.create_user(&new_user("a b"), 3)),
        Err(StoreError::Invalid(_))
    ));
    Ok(())
}

fn the_bot_namespace_is_for_bot_users_only(t: TestDb) -> TestResult {
    for squatter in ["bot.echo", "BOT.echo", "Bot.x"] {
        assert!(
            matches!(
                t.db.write(|tx| tx.create_user(&new_user(squatter), 1)),
                Err(StoreError::Invalid(_))
            ),
            "{squatter}"
        );
    }
    assert!(matches!(
        t.db.write(|tx| tx.create_bot_user(&new_user("echo"), 1)),
        Err(StoreError::Invalid(_))
    ));
    t.db.write(|tx| tx.create_bot_user(&new_user("bot.echo"), 1))?;
    let account = t.db.read(|r| r.get_account("bot.echo"))?;
    assert!(account.bot && account.active);
    assert!(t.db.read(|r| r.squatted_bot_ids())?.is_empty());
    Ok(())
}

fn deactivation_keeps_its_first_time_and_lists_page_by_id(t: TestDb) -> TestResult {
    t.db.write(|tx| {
        for id in ["carol", "alice", "bob"] {
            tx.create_user(&new_user(id), 1)?;
        }
        Ok(())
    })?;
    let off = t.db.write(|tx| tx.set_deactivated("bob", Some(10)))?;
    assert_eq!((off.active, off.deactivated_at), (false, Some(10)));
    let again = t.db.write(|tx| tx.set_deactivated("bob", Some(20)))?;
    assert_eq!(again.deactivated_at, Some(10));
    let on = t.db.write(|tx| tx.set_deactivated("bob", None))?;
    assert_eq!((on.active, on.deactivated_at), (true, None));
    assert!(matches!(
        t.db.write(|tx| tx.set_deactivated("zed", None)),
        Err(StoreError::NotFound { .. })
    ));
    let ids = |page: Vec<UserAccount>| page.into_iter().map(|a| a.user.id).collect::<Vec<_>>();
    assert_eq!(
        ids(t.db.read(|r| r.list_accounts(None, 2))?),
        ["alice", "bob"]
    );
    assert_eq!(
        ids(t.db.read(|r| r.list_accounts(Some("bob"), 2))?),
        ["carol"]
    );
    Ok(())
}
