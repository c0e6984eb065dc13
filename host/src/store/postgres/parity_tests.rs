//! Every method of the seam, run by one script on both backends: the transcripts of what each call
//! returned (values and errors alike, `Debug`-printed, with the random ids and tokens numbered in order
//! of appearance) must be identical. This is how "the same behaviour as SQLite" is checked for every
//! statement of the PostgreSQL backend, success and failure paths, without restating each answer.
//! Skips the PostgreSQL half when it is not installed, unless `CHATHOOKS_REQUIRE_POSTGRES=1`.

use chathooks_testservers::Postgres;
use serde_json::json;

use super::db_tests::test_pool;
use crate::store::{
    ConversationPatch, Db, Durability, MessagePage, NewConversation, NewMessage, NewUser,
};

type TestResult = anyhow::Result<()>;

fn ids<const N: usize>(list: [&str; N]) -> Vec<String> {
    list.map(str::to_owned).to_vec()
}

fn user(id: &str) -> NewUser {
    NewUser {
        id: id.to_owned(),
        name: id.to_uppercase(),
        metadata: json!({"n": 1, "nul": "\u{0}"}),
    }
}

fn page(
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
    oldest_first: bool,
) -> MessagePage {
    MessagePage {
        thread: None,
        before,
        after,
        limit,
        oldest_first,
    }
}

fn message(conversation: &str, sender: &str, body: &str, client_id: Option<&str>) -> NewMessage {
    NewMessage {
        conversation_id: conversation.to_owned(),
        sender_id: sender.to_owned(),
        body: body.to_owned(),
        metadata: json!({"attachment": "x"}),
        mentions: ids(["bob", "ghost"]),
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    }
}

/// Runs the script on `db`; the transcript, one line per call.
fn script(db: &Db) -> anyhow::Result<Vec<String>> {
    let mut log = Vec::new();
    let mut note = |label: &str, outcome: &dyn std::fmt::Debug| {
        log.push(format!("{label}: {outcome:?}"));
    };
    note("ping", &db.read(|r| r.ping()));

    // Users and tokens.
    for id in ["alice", "bob", "carol", "Zed"] {
        note("create_user", &db.write(|tx| tx.create_user(&user(id), 1)));
    }
    for id in ["alice", "bot.x", "BOT.y", "a b", ""] {
        note(
            "create_user refused",
            &db.write(|tx| tx.create_user(&user(id), 2)),
        );
    }
    for id in ["bot.echo", "bot.echo", "echo"] {
        note(
            "create_bot_user",
            &db.write(|tx| tx.create_bot_user(&user(id), 3)),
        );
    }
    note("get_user", &db.read(|r| r.get_user("alice")));
    note("get_user missing", &db.read(|r| r.get_user("ghost")));
    note("find_user", &db.read(|r| r.find_user("ghost")));
    note("get_account", &db.read(|r| r.get_account("bot.echo")));
    note("find_account", &db.read(|r| r.find_account("bob")));
    note("list_accounts", &db.read(|r| r.list_accounts(None, 3)));
    note(
        "list_accounts after",
        &db.read(|r| r.list_accounts(Some("bob"), 10)),
    );
    note(
        "deactivate",
        &db.write(|tx| tx.set_deactivated("carol", Some(10))),
    );
    note(
        "deactivate again",
        &db.write(|tx| tx.set_deactivated("carol", Some(20))),
    );
    note(
        "reactivate",
        &db.write(|tx| tx.set_deactivated("carol", None)),
    );
    note(
        "deactivate missing",
        &db.write(|tx| tx.set_deactivated("ghost", None)),
    );
    note("squatted", &db.read(|r| r.squatted_bot_ids()));
    let missing = ids(["alice", "ghost", "Zed", "ghost"]);
    note("missing_users", &db.read(|r| r.missing_users(&missing)));
    let lasting = db.write(|tx| tx.issue_token("alice", None, 4))?;
    let brief = db.write(|tx| tx.issue_token("alice", Some(100), 4))?;
    note("issue_token", &(&lasting.token, &lasting.info, &brief.info));
    note(
        "issue_token bot",
        &db.write(|tx| tx.issue_token("bot.echo", None, 4)),
    );
    note(
        "issue_token missing",
        &db.write(|tx| tx.issue_token("ghost", None, 4)),
    );
    note("token_owner", &db.read(|r| r.token_owner(&brief.token)));
    note(
        "token_owner unknown",
        &db.read(|r| r.token_owner("cht_nope")),
    );
    note("note_use", &db.write(|tx| tx.note_use(&brief.info.id, 30)));
    note(
        "note_use older",
        &db.write(|tx| tx.note_use(&brief.info.id, 20)),
    );
    note("list_tokens", &db.read(|r| r.list_tokens("alice", 100)));
    note(
        "list_tokens missing",
        &db.read(|r| r.list_tokens("ghost", 100)),
    );
    note(
        "issue drops expired",
        &db.write(|tx| tx.issue_token("alice", None, 200))
            .map(|i| i.info),
    );
    note(
        "revoke wrong user",
        &db.write(|tx| tx.revoke_token("bob", &lasting.info.id)),
    );
    note(
        "revoke",
        &db.write(|tx| tx.revoke_token("alice", &lasting.info.id)),
    );
    note("revoke_tokens", &db.write(|tx| tx.revoke_tokens("alice")));
    note(
        "token_owner revoked",
        &db.read(|r| r.token_owner(&lasting.token)),
    );

    // Conversations and members.
    let pair = NewConversation {
        participant_ids: ids(["alice", "bob"]),
        admin_ids: ids(["alice"]),
        distinct_by_participants: true,
        metadata: json!({"topic": "x"}),
        ..Default::default()
    };
    let conv = db.write(|tx| tx.create_conversation(&pair, 5))?;
    let c = conv.value.id.clone();
    note("create_conversation", &conv);
    let reversed = NewConversation {
        participant_ids: ids(["bob", "alice"]),
        ..pair.clone()
    };
    note(
        "distinct again",
        &db.write(|tx| tx.create_conversation(&reversed, 6)),
    );
    for (label, bad) in [
        ("unknown member", ids(["alice", "ghost"])),
        ("no members", Vec::new()),
    ] {
        let new = NewConversation {
            participant_ids: bad,
            ..Default::default()
        };
        note(label, &db.write(|tx| tx.create_conversation(&new, 6)));
    }
    let long = NewConversation {
        title: Some("x".repeat(501)),
        ..pair.clone()
    };
    note(
        "long title",
        &db.write(|tx| tx.create_conversation(&long, 6)),
    );
    let patch = ConversationPatch {
        title: Some(Some("Team".to_owned())),
        metadata: Some(json!({"x": [1, 2]})),
    };
    note(
        "update",
        &db.write(|tx| tx.update_conversation(&c, &patch, 7)),
    );
    let bad_patch = ConversationPatch {
        metadata: Some(json!([1])),
        ..Default::default()
    };
    note(
        "update refused",
        &db.write(|tx| tx.update_conversation(&c, &bad_patch, 7)),
    );
    note(
        "update missing",
        &db.write(|tx| tx.update_conversation("c_x", &patch, 7)),
    );
    let joiners = ids(["bob", "carol", "carol"]);
    note(
        "add_participants",
        &db.write(|tx| tx.add_participants(&c, &joiners, 8)),
    );
    let ghost = ids(["ghost"]);
    note(
        "add unknown",
        &db.write(|tx| tx.add_participants(&c, &ghost, 8)),
    );
    note("participants", &db.read(|r| r.participants(&c)));
    note("participant", &db.read(|r| r.participant(&c, "carol")));
    note("is_participant", &db.read(|r| r.is_participant(&c, "Zed")));
    note(
        "remove",
        &db.write(|tx| tx.remove_participant(&c, "carol", 9)),
    );
    note(
        "remove again",
        &db.write(|tx| tx.remove_participant(&c, "carol", 9)),
    );
    note("get_conversation", &db.read(|r| r.get_conversation(&c)));

    // Messages, receipts, reactions.
    let sent = db.write(|tx| tx.send_message(&message(&c, "alice", "hi @bob", Some("k1")), 10))?;
    let m1 = sent.value.id.clone();
    note("send", &sent);
    note(
        "send again",
        &db.write(|tx| tx.send_message(&message(&c, "alice", "x", Some("k1")), 11)),
    );
    note(
        "send bad client_id",
        &db.write(|tx| tx.send_message(&message(&c, "alice", "x", Some("")), 11)),
    );
    note(
        "send missing",
        &db.write(|tx| tx.send_message(&message("c_x", "alice", "x", None), 11)),
    );
    for i in 2..=5 {
        let sender = if i == 4 { "bob" } else { "alice" };
        let body = format!("message {i}");
        note(
            "send more",
            &db.write(|tx| tx.send_message(&message(&c, sender, &body, None), 10 + i)),
        );
    }
    note(
        "find_by_client_id",
        &db.read(|r| r.find_by_client_id("alice", "k1")),
    );
    for page in [
        page(None, None, Some(2), false),
        page(Some(4), None, Some(2), false),
        page(None, Some(1), Some(2), true),
        page(Some(5), Some(1), None, false),
    ] {
        note("list_messages", &db.read(|r| r.list_messages(&c, &page)));
    }
    let mentions = ids(["carol"]);
    note(
        "edit",
        &db.write(|tx| tx.edit_message(&m1, "now @carol", None, &mentions, 20)),
    );
    note(
        "mark_delivered",
        &db.write(|tx| tx.mark_delivered(&m1, "bob", 21)),
    );
    note(
        "mark_delivered again",
        &db.write(|tx| tx.mark_delivered(&m1, "bob", 22)),
    );
    note("receipt", &db.read(|r| r.receipt(&m1, "bob")));
    note("unread_count", &db.read(|r| r.unread_count(&c, "bob")));
    let third = db.read(|r| r.list_messages(&c, &page(None, Some(2), Some(1), false)))?;
    let up_to = third.first().map(|m| m.id.clone()).unwrap_or_default();
    note(
        "mark_read up to",
        &db.write(|tx| tx.mark_read(&c, "bob", Some(&up_to), 23)),
    );
    note(
        "mark_read back",
        &db.write(|tx| tx.mark_read(&c, "bob", Some(&m1), 24)),
    );
    note(
        "mark_read stranger",
        &db.write(|tx| tx.mark_read(&c, "Zed", None, 24)),
    );
    note(
        "add_reaction",
        &db.write(|tx| tx.add_reaction(&m1, "bob", "👍", 25)),
    );
    note(
        "add_reaction again",
        &db.write(|tx| tx.add_reaction(&m1, "bob", "👍", 26)),
    );
    note(
        "add_reaction empty",
        &db.write(|tx| tx.add_reaction(&m1, "bob", " ", 26)),
    );
    note(
        "remove_reaction",
        &db.write(|tx| tx.remove_reaction(&m1, "bob", "👍")),
    );
    note(
        "remove_reaction again",
        &db.write(|tx| tx.remove_reaction(&m1, "bob", "👍")),
    );
    note("delete", &db.write(|tx| tx.delete_message(&m1, 27)));
    note("delete again", &db.write(|tx| tx.delete_message(&m1, 28)));
    note(
        "edit deleted",
        &db.write(|tx| tx.edit_message(&m1, "x", None, &[], 29)),
    );
    note(
        "react to deleted",
        &db.write(|tx| tx.add_reaction(&m1, "bob", "👍", 29)),
    );
    note(
        "mark_read all",
        &db.write(|tx| tx.mark_read(&c, "bob", None, 30)),
    );
    note("list_for_user", &db.read(|r| r.list_for_user("bob", 10)));

    // The event log, deliveries and dead letters.
    let payload = json!({"k": "v\u{0}"});
    let mut events = Vec::new();
    for (conversation, audience) in [
        (Some("c1"), ids(["bob", "alice", "alice"])),
        (Some("c1"), ids(["alice"])),
        (Some("c2"), ids(["alice"])),
        (None, ids(["alice"])),
    ] {
        events.push(
            db.write(|tx| tx.append_event("message.new", conversation, &audience, &payload, 40))?,
        );
    }
    note("events", &events);
    note(
        "events_since",
        &db.read(|r| r.events_since("alice", events[0], 2)),
    );
    note("get_event", &db.read(|r| r.get_event(events[0])));
    note("get_event missing", &db.read(|r| r.get_event(999)));
    note("latest_event_id", &db.read(|r| r.latest_event_id()));
    note("pending_events", &db.read(|r| r.pending_events(2)));
    let pq = ids(["p", "q"]);
    note("fan_out", &db.write(|tx| tx.fan_out(events[0], &pq, 41)));
    note(
        "fan_out again",
        &db.write(|tx| tx.fan_out(events[0], &pq, 41)),
    );
    note("fan_out missing", &db.write(|tx| tx.fan_out(999, &pq, 41)));
    for event in db.read(|r| r.pending_events(10))? {
        note(
            "fan_out_event",
            &db.write(|tx| tx.fan_out_event(&event, &pq, 42)),
        );
    }
    note("outbox_depth", &db.read(|r| r.outbox_depth()));
    note("queued_deliveries", &db.read(|r| r.queued_deliveries()));
    note(
        "next_deliveries",
        &db.read(|r| r.next_deliveries(42, &pq, 10)),
    );
    note(
        "start_head not head",
        &db.write(|tx| tx.start_head(events[1], "p", 50)),
    );
    note(
        "start_delivery",
        &db.write(|tx| tx.start_delivery(events[0], "p")),
    );
    note(
        "start_delivery missing",
        &db.write(|tx| tx.start_delivery(999, "p")),
    );
    note(
        "delivery_failed",
        &db.write(|tx| tx.delivery_failed(events[0], "p", "boom", 60)),
    );
    note(
        "delivery_failed missing",
        &db.write(|tx| tx.delivery_failed(999, "p", "boom", 60)),
    );
    note(
        "start_head early",
        &db.write(|tx| tx.start_head(events[0], "p", 59)),
    );
    note(
        "start_head",
        &db.write(|tx| tx.start_head(events[0], "p", 60)),
    );
    note(
        "postpone",
        &db.write(|tx| tx.postpone_delivery(events[0], "p", 70)),
    );
    note(
        "postpone missing",
        &db.write(|tx| tx.postpone_delivery(999, "p", 70)),
    );
    note(
        "start_delivery q",
        &db.write(|tx| tx.start_delivery(events[0], "q")),
    );
    note("recover_in_flight", &db.write(|tx| tx.recover_in_flight()));
    note("delivery_queue", &db.read(|r| r.delivery_queue("p", "c1")));
    note(
        "delivery_succeeded",
        &db.write(|tx| tx.delivery_succeeded(events[0], "q")),
    );
    note(
        "delivery_succeeded again",
        &db.write(|tx| tx.delivery_succeeded(events[0], "q")),
    );
    note(
        "dead_letter",
        &db.write(|tx| tx.dead_letter(events[0], "p", "gave up", 80)),
    );
    note(
        "dead_letter missing",
        &db.write(|tx| tx.dead_letter(events[0], "p", "gave up", 80)),
    );
    note(
        "dead_letter_unqueued",
        &db.write(|tx| tx.dead_letter_unqueued(events[3], "r", "full", 81)),
    );
    note(
        "start_delivery p2",
        &db.write(|tx| tx.start_delivery(events[1], "p")),
    );
    note(
        "dead_letter_waiting",
        &db.write(|tx| tx.dead_letter_waiting("p", "gone", 82)),
    );
    note("dead_letters", &db.read(|r| r.dead_letters(0, 10)));
    note("dead_letters after", &db.read(|r| r.dead_letters(2, 1)));
    note("dead_letter_count", &db.read(|r| r.dead_letter_count()));
    note("backlog", &db.read(|r| r.backlog()));
    note("replay", &db.write(|tx| tx.replay_dead_letter(1, 90)));
    note(
        "replay missing",
        &db.write(|tx| tx.replay_dead_letter(1, 90)),
    );
    note("backlog after replay", &db.read(|r| r.backlog()));
    note(
        "next_deliveries after",
        &db.read(|r| r.next_deliveries(100, &pq, 10)),
    );

    // Devices and timers.
    note(
        "add_device",
        &db.write(|tx| tx.add_device("bob", "ios", "tok-b", 100)),
    );
    note(
        "add_device again",
        &db.write(|tx| tx.add_device("bob", "android", "tok-b", 101)),
    );
    note(
        "add_device alice",
        &db.write(|tx| tx.add_device("alice", "web", "tok-a", 102)),
    );
    let owners = ids(["bob", "alice", "bob", "ghost"]);
    note("devices_of", &db.read(|r| r.devices_of(&owners)));
    note(
        "remove_device",
        &db.write(|tx| tx.remove_device("bob", "tok-b")),
    );
    note(
        "remove_device again",
        &db.write(|tx| tx.remove_device("bob", "tok-b")),
    );
    note(
        "set_timer",
        &db.write(|tx| tx.set_timer("p", "a", 100, None, "x", 1)),
    );
    note(
        "set_timer b",
        &db.write(|tx| tx.set_timer("p", "b", 50, Some(1000), "y", 1)),
    );
    let due = db.read(|r| r.due_timers(100, 10))?;
    note("due_timers", &due);
    note("next_timer_due", &db.read(|r| r.next_timer_due()));
    note(
        "set_timer again",
        &db.write(|tx| tx.set_timer("p", "a", 500, None, "z", 2)),
    );
    note(
        "finish stale",
        &db.write(|tx| tx.finish_firing(&due[1], None, 0)),
    );
    note(
        "finish",
        &db.write(|tx| tx.finish_firing(&due[0], Some(1050), 1)),
    );
    note("timers_of", &db.read(|r| r.timers_of("p")));
    note("cancel_timer", &db.write(|tx| tx.cancel_timer("p", "a")));
    note(
        "cancel_timer again",
        &db.write(|tx| tx.cancel_timer("p", "a")),
    );

    note(
        "delete_conversation",
        &db.write(|tx| tx.delete_conversation(&c)),
    );
    note("get deleted", &db.read(|r| r.get_conversation(&c)));
    note(
        "events outlive it",
        &db.read(|r| r.events_since("bob", 0, 10)).map(|e| e.len()),
    );
    Ok(log)
}

/// `text` with each generated id (`c_`, `m_`, `t_` followed by 27 hex digits) and token (`cht_` and 64)
/// replaced by its kind and the order of its first appearance, so two runs compare equal.
fn normalize(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for (prefix, digits) in [("cht_", 64), ("c_", 27), ("m_", 27), ("t_", 27)] {
            let boundary = !out.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            let Some(tail) = rest.strip_prefix(prefix).filter(|_| boundary) else {
                continue;
            };
            let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
            if hex == digits {
                let id = &rest[..prefix.len() + digits];
                let n = seen.iter().position(|s| s == id).unwrap_or_else(|| {
                    seen.push(id.to_owned());
                    seen.len() - 1
                });
                out.push_str(&format!("<{prefix}{n}>"));
                rest = &rest[id.len()..];
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[test]
fn normalize_numbers_ids_by_first_appearance() {
    let id = format!("m_{}", "a".repeat(27));
    let other = format!("c_{}", "0".repeat(27));
    let text = format!("{id} {other} \"{id}\" xm_{} c_12", "b".repeat(27));
    assert_eq!(
        normalize(&text),
        format!("<m_0> <c_1> \"<m_0>\" xm_{} c_12", "b".repeat(27))
    );
}

#[test]
fn every_seam_method_answers_on_postgres_as_on_sqlite() -> TestResult {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let sqlite = Db::open(dir.path().join("chat.db"))?;
    let postgres = Db::connect(
        &pg.url_for_new_database()?,
        Durability::Process,
        test_pool(),
    )?;
    let expected = script(&sqlite)?;
    let got = script(&postgres)?;
    // Numbered over the whole transcript, so an id must also reappear where the other backend's did.
    let (expected, got) = (normalize(&expected.join("\n")), normalize(&got.join("\n")));
    assert_eq!(expected.lines().count(), got.lines().count());
    for (want, have) in expected.lines().zip(got.lines()) {
        assert_eq!(have, want);
    }
    Ok(())
}
