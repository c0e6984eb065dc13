//! Bearer tokens: issued to ordinary users (a bounded number each), resolved to their owner, expiring,
//! noting their use, revoked one by one or all at once.

use super::{TestDb, TestResult};
use crate::store::limits::{LAST_USED_RESOLUTION_MS, MAX_TOKENS_PER_USER, TOKEN_PREFIX};
use crate::store::{NewUser, Result, StoreError};

backend_tests!(TestDb:
    tokens_resolve_to_their_user_until_revoked,
    expiry_last_use_and_revocation_by_id,
    bots_get_no_token_and_a_user_holds_a_bounded_number,
);

/// Creates the user `alice`, named "Alice", at time 1.
fn alice(t: &TestDb) -> Result<()> {
    let new = NewUser {
        id: "alice".into(),
        name: "Alice".into(),
        metadata: serde_json::json!({"a": 1}),
    };
    t.db.write(|tx| tx.create_user(&new, 1).map(|_| ()))
}

fn tokens_resolve_to_their_user_until_revoked(t: TestDb) -> TestResult {
    alice(&t)?;
    let issued = t.db.write(|tx| tx.issue_token("alice", None, 2))?;
    let token = issued.token;
    assert!(token.starts_with(TOKEN_PREFIX) && token.len() == TOKEN_PREFIX.len() + 64);
    let owner = t.db.read(|r| r.token_owner(&token))?;
    assert_eq!(owner.map(|o| o.user.name), Some("Alice".to_owned()));
    assert!(t.db.read(|r| r.token_owner("cht_nope"))?.is_none());
    assert!(matches!(
        t.db.write(|tx| tx.issue_token("bob", None, 3)),
        Err(StoreError::NotFound { .. })
    ));
    t.db.write(|tx| tx.revoke_tokens("alice"))?;
    assert!(t.db.read(|r| r.token_owner(&token))?.is_none());
    Ok(())
}

fn expiry_last_use_and_revocation_by_id(t: TestDb) -> TestResult {
    alice(&t)?;
    let lasting = t.db.write(|tx| tx.issue_token("alice", None, 10))?;
    let brief = t.db.write(|tx| tx.issue_token("alice", Some(100), 20))?;
    let owner = t.db.read(|r| r.token_owner(&brief.token))?;
    let owner = owner.ok_or_else(|| StoreError::not_found("token", "brief"))?;
    assert!(!owner.expired(99) && owner.expired(100));
    assert!(owner.use_is_news(30));
    t.db.write(|tx| tx.note_use(&owner.token_id, 30))?;
    let listed = t.db.read(|r| r.list_tokens("alice", 100))?;
    let view: Vec<_> = listed
        .iter()
        .map(|info| (info.id.as_str(), info.expired, info.last_used_at))
        .collect();
    assert_eq!(
        view,
        [
            (brief.info.id.as_str(), true, Some(30)),
            (lasting.info.id.as_str(), false, None)
        ]
    );
    let noted = t.db.read(|r| r.token_owner(&brief.token))?;
    assert!(noted.is_some_and(|o| !o.use_is_news(30 + LAST_USED_RESOLUTION_MS - 1)));
    // Issuing drops expired tokens; revoking takes the id and the right user.
    t.db.write(|tx| tx.issue_token("alice", None, 200))?;
    assert!(t.db.read(|r| r.token_owner(&brief.token))?.is_none());
    assert!(!t.db.write(|tx| tx.revoke_token("bob", &lasting.info.id))?);
    assert!(t.db.write(|tx| tx.revoke_token("alice", &lasting.info.id))?);
    assert!(t.db.read(|r| r.token_owner(&lasting.token))?.is_none());
    Ok(())
}

fn bots_get_no_token_and_a_user_holds_a_bounded_number(t: TestDb) -> TestResult {
    alice(&t)?;
    let bot = NewUser {
        id: "bot.echo".into(),
        name: "echo".into(),
        metadata: serde_json::Value::Null,
    };
    t.db.write(|tx| tx.create_bot_user(&bot, 1).map(|_| ()))?;
    assert!(matches!(
        t.db.write(|tx| tx.issue_token("bot.echo", None, 2)),
        Err(StoreError::Invalid(_))
    ));
    for _ in 0..MAX_TOKENS_PER_USER {
        t.db.write(|tx| tx.issue_token("alice", None, 2))?;
    }
    assert!(matches!(
        t.db.write(|tx| tx.issue_token("alice", None, 2)),
        Err(StoreError::Conflict(_))
    ));
    Ok(())
}
