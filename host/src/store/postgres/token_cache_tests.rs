//! The token owners a server on its own remembers on PostgreSQL ([`crate::store::token_cache`]), against
//! a real server: revocation and deactivation through the server are seen at once, a change behind its
//! back after [`TTL_MS`], and a server that has not claimed the database remembers nothing. Skips
//! without PostgreSQL, unless `CHATHOOKS_REQUIRE_POSTGRES=1`.

use chathooks_testservers::Postgres;

use super::db_tests::{test_pool, user};
use crate::store::token_cache::TTL_MS;
use crate::store::{Db, Durability, TokenOwner};

type TestResult = anyhow::Result<()>;

/// A fresh database with user `alice` (named `ALICE`) and a token of hers; claimed (the database's only
/// server) if `claim`.
fn alice_with_a_token(claim: bool) -> anyhow::Result<Option<(Db, String, String)>> {
    let Some(pg) = Postgres::shared() else {
        return Ok(None);
    };
    let db = Db::connect(
        &pg.url_for_new_database()?,
        Durability::Process,
        test_pool(),
    )?;
    if claim {
        db.claim()?;
    }
    db.write(|tx| tx.create_user(&user("alice"), 1))?;
    let issued = db.write(|tx| tx.issue_token("alice", None, 1))?;
    Ok(Some((db, issued.token, issued.info.id)))
}

/// Renames `alice` behind the server's back, as `psql` would.
fn rename_outside(db: &Db, name: &str) -> anyhow::Result<()> {
    let Some(pg_db) = db.as_postgres() else {
        anyhow::bail!("not PostgreSQL");
    };
    pg_db.handle().block_on(async {
        let client = pg_db.pool().get().await?;
        client
            .execute("UPDATE users SET name = $1 WHERE id = 'alice'", &[&name])
            .await?;
        anyhow::Ok(())
    })
}

fn name(owner: Option<TokenOwner>) -> Option<String> {
    owner.map(|owner| owner.user.name)
}

#[test]
fn an_owner_is_remembered_until_the_server_changes_its_rows_or_for_a_second_if_changed_elsewhere()
-> TestResult {
    let Some((db, token, token_id)) = alice_with_a_token(true)? else {
        return Ok(());
    };
    assert_eq!(name(db.token_owner(&token, 10)?), Some("ALICE".into()));
    rename_outside(&db, "Al")?;
    assert_eq!(
        name(db.token_owner(&token, 10 + TTL_MS - 1)?),
        Some("ALICE".into())
    );
    assert_eq!(
        name(db.token_owner(&token, 10 + TTL_MS)?),
        Some("Al".into())
    );

    // Through the server, deactivation and revocation are seen at once.
    db.write(|tx| tx.set_deactivated("alice", Some(20)))?;
    let owner = db.token_owner(&token, 10 + TTL_MS)?;
    assert_eq!(owner.map(|owner| owner.deactivated), Some(true));
    assert!(db.write(|tx| tx.revoke_token("alice", &token_id))?);
    assert_eq!(name(db.token_owner(&token, 10 + TTL_MS)?), None);
    Ok(())
}

#[test]
fn a_server_that_has_not_claimed_the_database_reads_every_owner() -> TestResult {
    let Some((db, token, _)) = alice_with_a_token(false)? else {
        return Ok(());
    };
    assert_eq!(name(db.token_owner(&token, 10)?), Some("ALICE".into()));
    rename_outside(&db, "Al")?;
    assert_eq!(name(db.token_owner(&token, 11)?), Some("Al".into()));
    Ok(())
}
