//! The SQLite schema's migrations (`migrations.rs`): each step once, newer files refused, and what the
//! steps that move data do to rows written by the versions before them.

use rusqlite::Connection;
use sha2::Digest;

use super::migrations::{MIGRATIONS, current_version, latest_version, migrate};
use super::unread::unread_count;
use crate::store::error::{Result, StoreError};

#[test]
fn migrates_once_and_refuses_newer_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("m.db"))?;
    assert_eq!(migrate(&mut conn)?, 0);
    assert_eq!(current_version(&conn)?, latest_version());
    assert_eq!(migrate(&mut conn)?, latest_version());
    conn.pragma_update(None, "user_version", latest_version() + 1)?;
    assert!(matches!(
        migrate(&mut conn),
        Err(StoreError::SchemaTooNew { .. })
    ));
    Ok(())
}

#[test]
fn version_4_marks_bots_and_deactivates_users_squatting_their_ids() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("m.db"))?;
    for sql in MIGRATIONS[..3].iter() {
        conn.execute_batch(sql)?;
    }
    conn.pragma_update(None, "user_version", 3)?;
    // The server made bot.echo for plugin echo; an admin made bot.command_bot (with a token) and alice.
    let alice_token = "cht_alice";
    conn.execute_batch(&format!(
        "INSERT INTO users (id, name, metadata, created_at) VALUES
           ('bot.echo', 'echo', '{{\"bot\": true, \"plugin\": \"echo\"}}', 5),
           ('bot.command_bot', 'Mallory', '{{\"bot\": true, \"plugin\": \"command_bot\"}}', 6),
           ('alice', 'Alice', '{{}}', 7);
         INSERT INTO tokens (hash, user_id, created_at) VALUES
           ('{}', 'alice', 8), ('squatter-hash', 'bot.command_bot', 9);",
        hex::encode(sha2::Sha256::digest(alice_token.as_bytes()))
    ))?;
    migrate(&mut conn)?;
    let mut stmt =
        conn.prepare("SELECT id, is_bot, deactivated_at IS NOT NULL FROM users ORDER BY id")?;
    let users = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<(String, bool, bool)>>>()?;
    let expected = [
        ("alice", false, false),
        ("bot.command_bot", false, true),
        ("bot.echo", true, false),
    ]
    .map(|(id, bot, off)| (id.to_owned(), bot, off));
    assert_eq!(users, expected);
    assert_eq!(super::users::squatted_bot_ids(&conn)?, ["bot.command_bot"]);
    // Tokens keep working under their hash, with an id of the new shape.
    let owner = super::tokens::token_owner(&conn, alice_token)?;
    let owner = owner.ok_or_else(|| StoreError::not_found("token", "alice"))?;
    assert_eq!(owner.user.id, "alice");
    assert!(owner.token_id.starts_with("t_00000000008") && owner.token_id.len() == 21);
    Ok(())
}

#[test]
fn version_7_gives_admins_their_role_and_conversations_their_oldest_admin_as_owner() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("m.db"))?;
    for sql in &MIGRATIONS[..6] {
        conn.execute_batch(sql)?;
    }
    conn.pragma_update(None, "user_version", 6)?;
    // c1: a created it (admin since 0), c made admin later; c2: no admin at all.
    conn.execute_batch(
        "INSERT INTO users (id, name, created_at) VALUES ('a', 'A', 0), ('b', 'B', 0), ('c', 'C', 0);
         INSERT INTO conversations (id, created_at, updated_at) VALUES ('c1', 0, 0), ('c2', 0, 0);
         INSERT INTO participants (conversation_id, user_id, is_admin, joined_at)
         VALUES ('c1', 'c', 1, 5), ('c1', 'a', 1, 0), ('c1', 'b', 0, 1), ('c2', 'b', 0, 0);",
    )?;
    assert_eq!(migrate(&mut conn)?, 6);
    let mut stmt = conn.prepare(
        "SELECT conversation_id, user_id, role FROM participants ORDER BY conversation_id, user_id",
    )?;
    let roles = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let expected = [
        ("c1", "a", "admin"),
        ("c1", "b", "member"),
        ("c1", "c", "admin"),
        ("c2", "b", "member"),
    ]
    .map(|(c, u, r)| (c.to_owned(), u.to_owned(), r.to_owned()));
    assert_eq!(roles, expected);
    let mut stmt = conn.prepare("SELECT id, owner_id FROM conversations ORDER BY id")?;
    let owners = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    assert_eq!(
        owners,
        [
            ("c1".to_owned(), Some("a".to_owned())),
            ("c2".to_owned(), None)
        ]
    );
    Ok(())
}

#[test]
fn versions_3_and_11_fill_unread_counts_from_the_messages() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("m.db"))?;
    conn.execute_batch(MIGRATIONS[0])?;
    conn.execute_batch(MIGRATIONS[1])?;
    conn.pragma_update(None, "user_version", 2)?;
    // b read up to seq 1; c joined at seq 2; a sent 1, 2 and 4 (2 deleted), b sent 3.
    conn.execute_batch(
        "INSERT INTO users (id, name, created_at) VALUES ('a', 'A', 0), ('b', 'B', 0), ('c', 'C', 0);
         INSERT INTO conversations (id, last_seq, created_at, updated_at) VALUES ('c1', 4, 0, 0);
         INSERT INTO participants (conversation_id, user_id, joined_at, joined_seq, last_read_seq)
         VALUES ('c1', 'a', 0, 0, 0), ('c1', 'b', 0, 0, 1), ('c1', 'c', 0, 2, 2);
         INSERT INTO messages (id, conversation_id, seq, sender_id, body, created_at, deleted)
         VALUES ('m1', 'c1', 1, 'a', 'x', 0, 0), ('m2', 'c1', 2, 'a', 'x', 0, 1),
                ('m3', 'c1', 3, 'b', 'x', 0, 0), ('m4', 'c1', 4, 'a', 'x', 0, 0);",
    )?;
    assert_eq!(migrate(&mut conn)?, 2);
    // Version 3 counted them per participant; version 11 keeps counters they are derived from.
    let counts = ["a", "b", "c"]
        .map(|user| Ok((user.to_owned(), unread_count(&conn, "c1", user)?)))
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let expected = [("a", 1), ("b", 1), ("c", 2)].map(|(u, n)| (u.to_owned(), n));
    assert_eq!(counts, expected);
    Ok(())
}

/// Events written before version 10 keep their audience rows and are replayed with the ones after it,
/// in order, whether their audience is stored once (large) or as rows.
#[test]
fn version_10_replays_older_events_with_newer_large_audiences() -> anyhow::Result<()> {
    use crate::store::limits::LARGE_AUDIENCE;
    use crate::store::sqlite::Db;
    use crate::store::sqlite::events::{Queue, append_event, events_since, get_event};

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("chat.db");
    let members: Vec<String> = (0..=LARGE_AUDIENCE).map(|i| format!("u{i:03}")).collect();
    let members_json = serde_json::to_string(&members)?;
    {
        let conn = Connection::open(&path)?;
        for sql in &MIGRATIONS[..9] {
            conn.execute_batch(sql)?;
        }
        conn.pragma_update(None, "user_version", 9)?;
        // As version 9 stored an event: its audience in the row and a row per member.
        conn.execute(
            "INSERT INTO events (kind, conversation_id, audience, payload, created_at)
             VALUES ('message.new', 'c', ?1, '{}', 1)",
            [&members_json],
        )?;
        conn.execute(
            "INSERT INTO event_audience (user_id, event_id) SELECT value, 1 FROM json_each(?1)",
            [&members_json],
        )?;
    }
    let db = Db::open(&path)?;
    let newer = db.write(|tx| {
        append_event(
            tx,
            "message.new",
            Some("c"),
            &members,
            &serde_json::json!({}),
            2,
            Queue::No,
        )
    })?;
    let seen = db.read(|c| events_since(c, "u100", 0, 10))?;
    assert_eq!(
        seen.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![1, newer]
    );
    assert_eq!(db.read(|c| get_event(c, 1))?.audience, members);
    assert_eq!(db.read(|c| get_event(c, newer))?.audience, members);
    Ok(())
}
