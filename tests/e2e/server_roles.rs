//! Roles, ownership, bans and blocking over real HTTP and WebSocket: a role change arrives live and shows
//! in the conversation; the owner and the last admin are protected; a ban removes the member (live
//! `member.removed` then `member.banned`), refuses adding them again with the ban named, and an unban
//! allows it; a block stops one-to-one messages only, and each user lists only their own blocks.
//! Each operation's after-hook gets what happened (the recorder fixture).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server_support::{TestServer, WsClient, str_field};

/// The next event of `kind` on `ws` for conversation `conv`.
async fn next_in(ws: &mut WsClient, kind: &str, conv: &str) -> Value {
    loop {
        let event = ws.next_of_kind(kind).await;
        if event["payload"]["conversation"]["id"] == conv {
            return event;
        }
    }
}

/// `PUT .../participants/{user}/role` as `token`; the status and answer.
async fn set_role(
    server: &TestServer,
    token: &str,
    conv: &str,
    user: &str,
    role: &str,
) -> (StatusCode, Value) {
    let path = format!("/v1/conversations/{conv}/participants/{user}/role");
    server
        .call(Method::PUT, &path, Some(token), Some(json!({"role": role})))
        .await
}

/// The error message of an error answer.
fn message(answer: &Value) -> &str {
    answer["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_change_live_and_protect_the_owner() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let conv = server.conversation(&alice, &["bob", "carol"]).await;
    let mut c = server.ws(&carol, None).await;
    let path = format!("/v1/conversations/{conv}");
    assert_eq!(server.get_ok(&path, &bob).await["owner_id"], "alice");

    let (status, bob_now) = set_role(&server, &alice, &conv, "bob", "moderator").await;
    assert_eq!(status, StatusCode::OK, "{bob_now}");
    assert_eq!(
        (bob_now["role"].as_str(), bob_now["is_admin"].as_bool()),
        (Some("moderator"), Some(false))
    );
    let live = next_in(&mut c, "member.role_changed", &conv).await;
    assert_eq!(live["payload"]["participant"]["user"]["id"], "bob");
    assert_eq!(live["payload"]["participant"]["role"], "moderator");
    assert_eq!(live["payload"]["old_role"], "member");
    assert_eq!(live["payload"]["changed_by"]["id"], "alice");
    assert_eq!(
        live["payload"]["conversation"]["moderator_ids"],
        json!(["bob"])
    );
    let conversation = server.get_ok(&path, &carol).await;
    assert_eq!(conversation["moderator_ids"], json!(["bob"]));
    assert_eq!(conversation["admin_ids"], json!(["alice"]));

    // Only admins change roles; a role that is not one is named.
    let (status, answer) = set_role(&server, &bob, &conv, "carol", "moderator").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, answer) = set_role(&server, &alice, &conv, "carol", "owner").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, _) = set_role(&server, &alice, &conv, "zed", "member").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The owner stays an admin, whoever asks.
    let (status, answer) = set_role(&server, &alice, &conv, "alice", "member").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        message(&answer).contains("transfer ownership first"),
        "{answer}"
    );

    // Only the owner transfers; the new owner becomes an admin (role change first, then the transfer).
    let owner = format!("/v1/conversations/{conv}/owner");
    let (status, _) = server
        .call(
            Method::POST,
            &owner,
            Some(&bob),
            Some(json!({"user_id": "bob"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = server
        .call(
            Method::POST,
            &owner,
            Some(&alice),
            Some(json!({"user_id": "dave"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(message(&answer).contains("not a participant"), "{answer}");
    let moved = server
        .post_ok(&owner, &alice, json!({"user_id": "carol"}))
        .await;
    assert_eq!(moved["owner_id"], "carol");
    assert_eq!(moved["admin_ids"], json!(["alice", "carol"]));
    let promoted = next_in(&mut c, "member.role_changed", &conv).await;
    assert_eq!(
        (
            &promoted["payload"]["participant"]["user"]["id"],
            &promoted["payload"]["old_role"]
        ),
        (&json!("carol"), &json!("member"))
    );
    let transferred = next_in(&mut c, "conversation.owner_transferred", &conv).await;
    assert_eq!(transferred["payload"]["old_owner"]["id"], "alice");
    assert_eq!(transferred["payload"]["new_owner"]["id"], "carol");
    assert_eq!(transferred["payload"]["conversation"]["owner_id"], "carol");

    // alice is an admin, no longer the owner: she may step down, and may not remove the owner.
    let (status, answer) = set_role(&server, &alice, &conv, "alice", "member").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = server
        .call(
            Method::DELETE,
            &format!("{path}/participants/carol"),
            Some(&carol),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the owner may leave: {answer}");
    c.close().await;

    // With no owner and one admin left: the last admin cannot step down; any admin may take ownership.
    let conversation = server.get_ok(&path, &bob).await;
    assert_eq!(
        (
            conversation["owner_id"].clone(),
            conversation["admin_ids"].clone()
        ),
        (Value::Null, json!([]))
    );
    let solo = server.conversation(&alice, &["bob"]).await;
    set_role(&server, &alice, &solo, "bob", "admin").await;
    let leave = format!("/v1/conversations/{solo}/participants/alice");
    let (status, _) = server.call(Method::DELETE, &leave, Some(&bob), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "admins may not remove the owner"
    );
    let (status, _) = server
        .call(Method::DELETE, &leave, Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = set_role(&server, &bob, &solo, "bob", "member").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message(&answer).contains("last admin"), "{answer}");
    let taken = server
        .post_ok(
            &format!("/v1/conversations/{solo}/owner"),
            &bob,
            json!({"user_id": "bob"}),
        )
        .await;
    assert_eq!(taken["owner_id"], "bob");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_removes_refuses_readding_until_unbanned() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await;
    let conv = server.conversation(&alice, &["bob", "carol", "dave"]).await;
    set_role(&server, &alice, &conv, "bob", "moderator").await;
    let bans = format!("/v1/conversations/{conv}/bans");
    let mut c = server.ws(&carol, None).await;
    let mut d = server.ws(&dave, None).await;

    // Members may not ban or list bans; a moderator may not ban the owner or an admin.
    let (status, _) = server
        .call(
            Method::POST,
            &bans,
            Some(&dave),
            Some(json!({"user_id": "carol"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.call(Method::GET, &bans, Some(&dave), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = server
        .call(
            Method::POST,
            &bans,
            Some(&bob),
            Some(json!({"user_id": "alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        message(&answer).contains("owns the conversation"),
        "{answer}"
    );

    let (status, ban) = server
        .call(
            Method::POST,
            &bans,
            Some(&bob),
            Some(json!({"user_id": "carol", "reason": "spam"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ban}");
    assert_eq!(
        (
            ban["user"]["id"].as_str(),
            ban["banned_by"].as_str(),
            ban["reason"].as_str()
        ),
        (Some("carol"), Some("bob"), Some("spam"))
    );
    // The banned user hears of it: removed, then banned. So do the others.
    for ws in [&mut c, &mut d] {
        let removed = next_in(ws, "member.removed", &conv).await;
        assert_eq!(removed["payload"]["users"][0]["id"], "carol");
        let banned = next_in(ws, "member.banned", &conv).await;
        assert_eq!(banned["payload"]["ban"]["user"]["id"], "carol");
        assert_eq!(banned["payload"]["ban"]["reason"], "spam");
        assert_eq!(
            banned["payload"]["conversation"]["participant_ids"],
            json!(["alice", "bob", "dave"])
        );
    }
    // Banning again answers the ban as it is.
    let (status, again) = server
        .call(
            Method::POST,
            &bans,
            Some(&alice),
            Some(json!({"user_id": "carol", "reason": "again"})),
        )
        .await;
    assert_eq!(
        (status, again["reason"].as_str()),
        (StatusCode::OK, Some("spam"))
    );
    let path = format!("/v1/conversations/{conv}");
    let (status, _) = server.call(Method::GET, &path, Some(&carol), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "carol is out");

    // Adding her back is refused, naming her and saying what to do.
    let add = format!("{path}/participants");
    let (status, answer) = server
        .call(
            Method::POST,
            &add,
            Some(&alice),
            Some(json!({"user_ids": ["dave", "carol"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "banned");
    assert!(
        message(&answer).contains("\"carol\"") && message(&answer).contains("unban"),
        "{answer}"
    );
    let listed = server.get_ok(&bans, &bob).await;
    let listed: Vec<&str> = listed
        .as_array()
        .map(|bs| bs.iter().filter_map(|b| b["user"]["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(listed, ["carol"]);

    // Unbanning does not add her back; adding her then works.
    let (status, _) = server
        .call(Method::DELETE, &format!("{bans}/carol"), Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let unbanned = next_in(&mut c, "member.unbanned", &conv).await;
    assert_eq!(unbanned["payload"]["unbanned_by"]["id"], "bob");
    let (status, _) = server
        .call(Method::DELETE, &format!("{bans}/carol"), Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no ban left to lift");
    assert_eq!(server.get_ok(&bans, &bob).await, json!([]));
    let (status, _) = server.call(Method::GET, &path, Some(&carol), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an unban does not add her back"
    );
    let back = server
        .post_ok(&add, &alice, json!({"user_ids": ["carol"]}))
        .await;
    assert_eq!(
        back["participant_ids"],
        json!(["alice", "bob", "dave", "carol"])
    );

    // Only admins ban admins.
    set_role(&server, &alice, &conv, "dave", "admin").await;
    let (status, answer) = server
        .call(
            Method::POST,
            &bans,
            Some(&bob),
            Some(json!({"user_id": "dave"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _) = server
        .call(
            Method::POST,
            &bans,
            Some(&alice),
            Some(json!({"user_id": "dave"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    c.close().await;
    d.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_stops_one_to_one_messages_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    server.user("carol").await;
    let direct = str_field(
        &server
            .post_ok(
                "/v1/conversations",
                &alice,
                json!({"participant_ids": ["bob"], "distinct_by_participants": true}),
            )
            .await,
        "id",
    );
    let group = server.conversation(&alice, &["bob", "carol"]).await;
    let mut a = server.ws(&alice, None).await;
    let mut b = server.ws(&bob, None).await;

    let (status, block) = server
        .call(Method::PUT, "/v1/me/blocks/alice", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{block}");
    assert_eq!(
        (
            block["blocker_id"].as_str(),
            block["blocked"]["id"].as_str()
        ),
        (Some("bob"), Some("alice"))
    );
    let (status, _) = server
        .call(Method::PUT, "/v1/me/blocks/alice", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK, "blocking again is idempotent");
    let live = b.next_of_kind("user.blocked").await;
    assert_eq!(
        (
            live["payload"]["blocker"]["id"].as_str(),
            live["payload"]["blocked"]["id"].as_str()
        ),
        (Some("bob"), Some("alice"))
    );
    let (status, _) = server
        .call(Method::PUT, "/v1/me/blocks/bob", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no one blocks themselves");
    let (status, _) = server
        .call(Method::PUT, "/v1/me/blocks/zed", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // alice cannot message bob one to one; the group and bob's own messages go through.
    let send = format!("/v1/conversations/{direct}/messages");
    let (status, answer) = server
        .call(
            Method::POST,
            &send,
            Some(&alice),
            Some(json!({"body": "hello?"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "blocked");
    assert!(message(&answer).contains("\"bob\" blocked you"), "{answer}");
    let in_group = server.send(&alice, &group, "hi all").await;
    server.send(&bob, &direct, "I can still write").await;
    // alice was not told of the block: her next event (presence aside) is her group message.
    let first = a.next_event().await;
    assert_eq!(
        (first["kind"].as_str(), &first["payload"]["message"]["id"]),
        (Some("message.new"), &in_group["id"])
    );

    // Each user lists only their own blocks.
    let listed = server.get_ok("/v1/me/blocks", &bob).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["blocked"]["id"], "alice");
    assert_eq!(server.get_ok("/v1/me/blocks", &alice).await, json!([]));

    let (status, _) = server
        .call(Method::DELETE, "/v1/me/blocks/alice", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        b.next_of_kind("user.unblocked").await["payload"]["blocked"]["id"],
        "alice"
    );
    let (status, _) = server
        .call(Method::DELETE, "/v1/me/blocks/alice", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.send(&alice, &direct, "hello again").await;
    a.close().await;
    b.close().await;
    server.stop().await;
}

/// The recorder's record of `hook` for the event `event` (waits for its delivery).
async fn hook_record(server: &TestServer, hook: &str, event: &Value) -> Value {
    server
        .wait_kv("recorder", &format!("{hook}:{}", event["id"]))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_reaches_its_after_hook() {
    let server = TestServer::with_plugins(&[chathooks_tests::fixture("recorder")]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    server.user("carol").await;
    let conv = server.conversation(&alice, &["bob", "carol"]).await;
    let mut a = server.ws(&alice, None).await;

    set_role(&server, &alice, &conv, "bob", "moderator").await;
    let event = next_in(&mut a, "member.role_changed", &conv).await;
    let record = hook_record(&server, "after-participant-role-changed", &event).await;
    assert_eq!(
        (
            &record["participant"]["user"],
            &record["participant"]["role"],
            &record["old_role"],
            &record["changed_by"],
            &record["conversation"]["owner_id"]
        ),
        (
            &json!("bob"),
            &json!("moderator"),
            &json!("member"),
            &json!("alice"),
            &json!("alice")
        )
    );

    let bans = format!("/v1/conversations/{conv}/bans");
    server
        .post_ok(&bans, &bob, json!({"user_id": "carol", "reason": "spam"}))
        .await;
    let removed = next_in(&mut a, "member.removed", &conv).await;
    let record = hook_record(&server, "after-users-removed-from-conversation", &removed).await;
    assert_eq!(record["old_users"], json!(["carol"]));
    let event = next_in(&mut a, "member.banned", &conv).await;
    let record = hook_record(&server, "after-member-banned", &event).await;
    assert_eq!(
        (
            &record["ban"]["user"],
            &record["ban"]["banned_by"],
            &record["ban"]["reason"]
        ),
        (&json!("carol"), &json!("bob"), &json!("spam"))
    );
    assert_eq!(record["conversation"]["participant_count"], 2);
    let (status, _) = server
        .call(Method::DELETE, &format!("{bans}/carol"), Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let event = next_in(&mut a, "member.unbanned", &conv).await;
    let record = hook_record(&server, "after-member-unbanned", &event).await;
    assert_eq!(
        (&record["ban"]["user"], &record["unbanned_by"]),
        (&json!("carol"), &json!("bob"))
    );

    let owner = format!("/v1/conversations/{conv}/owner");
    server
        .post_ok(&owner, &alice, json!({"user_id": "bob"}))
        .await;
    let event = next_in(&mut a, "conversation.owner_transferred", &conv).await;
    let record = hook_record(&server, "after-owner-transferred", &event).await;
    assert_eq!(
        (
            &record["old_owner"],
            &record["new_owner"],
            &record["conversation"]["owner_id"]
        ),
        (&json!("alice"), &json!("bob"), &json!("bob"))
    );

    let (status, _) = server
        .call(Method::PUT, "/v1/me/blocks/bob", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let event = a.next_of_kind("user.blocked").await;
    let record = hook_record(&server, "after-user-blocked", &event).await;
    assert_eq!(
        (&record["blocker"], &record["blocked"]),
        (&json!("alice"), &json!("bob"))
    );
    let (status, _) = server
        .call(Method::DELETE, "/v1/me/blocks/bob", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let event = a.next_of_kind("user.unblocked").await;
    let record = hook_record(&server, "after-user-unblocked", &event).await;
    assert_eq!(
        (&record["blocker"], &record["blocked"]),
        (&json!("alice"), &json!("bob"))
    );
    a.close().await;
    server.stop().await;
}
