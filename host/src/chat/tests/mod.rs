//! Chat operations against real SQLite files and real compiled plugins.
//! - `hooks`: each operation's hook and payload, before-hook chains, failing before-hooks.
//! - `rules`: who may do what, validation, idempotency, receipts, live events.
//! - `moderation`: roles, bans and blocks: what each writes, what a refusal leaves, a banned bot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hooks;
mod moderation;
mod rules;

use super::testkit::Kit;
use super::{CreateConversation, SendMessage};

fn create(ids: &[&str]) -> CreateConversation {
    CreateConversation {
        title: Some("T".into()),
        participant_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

fn send(body: &str) -> SendMessage {
    SendMessage {
        body: body.into(),
        ..Default::default()
    }
}

/// Every stored event id with its kind, oldest first (as the admin sees the log).
fn event_kinds(kit: &Kit) -> Vec<(i64, String)> {
    kit.db
        .as_sqlite()
        .unwrap()
        .read(|c| {
            let mut stmt = c.prepare("SELECT id, kind FROM events ORDER BY id")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .unwrap()
}
