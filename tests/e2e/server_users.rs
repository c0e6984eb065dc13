//! User administration over real HTTP and WebSocket: the bot namespace is reserved (issue 11, defect 3),
//! admins list, deactivate and reactivate users, and issue (with an expiry), list and revoke tokens.

use std::time::Duration;

use chathooks_tests::{example, temp_dir};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::powers_support::{PluginFile, plugins_folder, server_on};
use crate::sandbox_support::eventually;
use crate::server_support::{ADMIN_KEY, PATIENCE, TestServer, must, str_field};

const BOT_GRANTS: &str = "[grants]\nchat_post = true\nchat_join = true\n";

/// `(status, error message)` of a call expected to fail.
async fn refused(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, String) {
    let (status, answer) = server.call(method, path, Some(token), body).await;
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status.as_u16(), message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_ids_are_reserved_and_bots_get_no_token() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("command_bot"),
            name: "command_bot",
            manifest: Some(BOT_GRANTS.to_owned()),
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    // Nobody can take a plugin's bot id, in any letter case, before or after the bot exists.
    for id in ["bot.command_bot", "BOT.welcome_bot", "Bot.x"] {
        let body = json!({"id": id, "name": "Mallory"});
        let (status, message) = refused(
            &server,
            Method::POST,
            "/v1/admin/users",
            ADMIN_KEY,
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{id}: {message}");
        assert!(
            message.starts_with("id: ") && message.contains("reserved for plugins' bot users"),
            "{message}"
        );
    }
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    server.send(&alice, &conv, "/roll 1d6").await;
    let path = format!("/v1/conversations/{conv}/messages");
    eventually("the bot answers", || async {
        let page = server.get_ok(&path, &alice).await;
        page.as_array()?
            .iter()
            .find(|m| m["sender"]["id"] == "bot.command_bot")
            .cloned()
    })
    .await;
    let bot = server
        .get_ok("/v1/admin/users/bot.command_bot", ADMIN_KEY)
        .await;
    assert_eq!((&bot["bot"], &bot["active"]), (&json!(true), &json!(true)));
    let (status, message) = refused(
        &server,
        Method::POST,
        "/v1/admin/users/bot.command_bot/tokens",
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 422, "{message}");
    assert!(
        message.contains("bot user") && message.contains("no login token"),
        "{message}"
    );
    let (status, list) = server
        .call(
            Method::GET,
            "/v1/admin/users/bot.command_bot/tokens",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    // A deactivated bot: its plugin's posts are denied.
    server
        .post_ok(
            "/v1/admin/users/bot.command_bot/deactivate",
            ADMIN_KEY,
            json!(null),
        )
        .await;
    server.send(&alice, &conv, "/roll 2d6").await;
    let error = eventually("the plugin's post to be denied", || async {
        let plugins = server.get_ok("/v1/admin/plugins", ADMIN_KEY).await;
        plugins.as_array()?.iter().find_map(|p| {
            p["last_error"]
                .as_str()
                .filter(|e| e.contains("deactivated"))
                .map(str::to_owned)
        })
    })
    .await;
    assert!(error.contains("bot.command_bot"), "{error}");
    let page = server.get_ok(&path, &alice).await;
    let from_bot = page
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["sender"]["id"] == "bot.command_bot")
        .count();
    assert_eq!(from_bot, 1, "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_never_posts_as_an_ordinary_user_holding_its_bot_id() {
    let dir = temp_dir();
    plugins_folder(
        dir.path(),
        &[PluginFile {
            wasm: example("command_bot"),
            name: "command_bot",
            manifest: Some(BOT_GRANTS.to_owned()),
        }],
    );
    let server = server_on(dir.path(), |_| {}).await;
    // A database from before the fix: an admin created `bot.command_bot` as an ordinary user.
    server
        .exec_sql(
            "INSERT INTO users (id, name, metadata, created_at) VALUES ('bot.command_bot', 'Mallory', '{}', 0)",
        )
        .await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    server.send(&alice, &conv, "/roll 1d6").await;
    let error = eventually("the plugin's call to fail", || async {
        let plugins = server.get_ok("/v1/admin/plugins", ADMIN_KEY).await;
        plugins.as_array()?.iter().find_map(|p| {
            p["last_error"]
                .as_str()
                .filter(|e| e.contains("bot.command_bot"))
                .map(str::to_owned)
        })
    })
    .await;
    assert!(error.contains("ordinary user"), "{error}");
    let messages = server
        .get_ok(&format!("/v1/conversations/{conv}/messages"), &alice)
        .await;
    let senders: Vec<&Value> = messages
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| &m["sender"]["id"])
        .collect();
    assert_eq!(senders, [&json!("alice")], "{messages}");
    let conversation = server
        .get_ok(&format!("/v1/conversations/{conv}"), &alice)
        .await;
    assert_eq!(conversation["participant_ids"], json!(["alice"]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_page_through_users_with_bot_and_active_flags() {
    let server = TestServer::start().await;
    for id in ["carol", "alice", "bob"] {
        server.user(id).await;
    }
    let page = server.get_ok("/v1/admin/users?limit=2", ADMIN_KEY).await;
    let ids: Vec<&Value> = page
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| &u["id"])
        .collect();
    assert_eq!(ids, [&json!("alice"), &json!("bob")]);
    assert_eq!(page[0]["name"], "ALICE");
    assert_eq!(
        (&page[0]["bot"], &page[0]["active"]),
        (&json!(false), &json!(true))
    );
    assert!(
        page[0]["created_at"].as_i64().is_some_and(|t| t > 0),
        "{page}"
    );
    let rest = server
        .get_ok("/v1/admin/users?after=bob&limit=2", ADMIN_KEY)
        .await;
    assert_eq!(rest.as_array().map(|r| r.len()), Some(1));
    assert_eq!(rest[0]["id"], "carol");
    for limit in ["0", "501"] {
        let (status, message) = refused(
            &server,
            Method::GET,
            &format!("/v1/admin/users?limit={limit}"),
            ADMIN_KEY,
            None,
        )
        .await;
        assert_eq!(
            (status, message),
            (422, format!("limit: must be 1-500, not {limit}"))
        );
    }
    let (status, _) = refused(&server, Method::GET, "/v1/admin/users/zed", ADMIN_KEY, None).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivating_a_user_refuses_their_tokens_and_closes_their_websocket() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    server.send(&bob, &conv, "hello from bob").await;
    let mut bob_ws = open_ws(&server, &bob).await;

    let account = server
        .post_ok("/v1/admin/users/bob/deactivate", ADMIN_KEY, json!(null))
        .await;
    assert_eq!(account["active"], json!(false));
    assert!(account["deactivated_at"].as_i64().is_some(), "{account}");
    assert_eq!(close_code(&mut bob_ws).await, Some(1008));
    let (status, message) = refused(&server, Method::GET, "/v1/me", &bob, None).await;
    assert_eq!(
        (status, message.as_str()),
        (
            401,
            "user \"bob\" is deactivated; an admin can reactivate them"
        )
    );
    // A new WebSocket is refused too.
    let request = ws_request(&server, &bob);
    let refused_ws = tokio_tungstenite::connect_async(request).await;
    assert!(refused_ws.is_err(), "a deactivated user's WebSocket opened");
    // No new token while deactivated.
    let (status, message) = refused(
        &server,
        Method::POST,
        "/v1/admin/users/bob/tokens",
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 409, "{message}");
    // Their messages and membership stay; alice is not affected.
    let messages = server
        .get_ok(&format!("/v1/conversations/{conv}/messages"), &alice)
        .await;
    assert_eq!(messages[0]["body"], "hello from bob");
    let conversation = server
        .get_ok(&format!("/v1/conversations/{conv}"), &alice)
        .await;
    assert_eq!(conversation["participant_ids"], json!(["alice", "bob"]));

    let account = server
        .post_ok("/v1/admin/users/bob/reactivate", ADMIN_KEY, json!(null))
        .await;
    assert_eq!(
        (&account["active"], &account["deactivated_at"]),
        (&json!(true), &Value::Null)
    );
    assert_eq!(server.get_ok("/v1/me", &bob).await["id"], "bob");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_without_secrets_expire_and_are_revoked() {
    let server = TestServer::start().await;
    let first = server.user("alice").await;
    let issued = server
        .post_ok(
            "/v1/admin/users/alice/tokens",
            ADMIN_KEY,
            json!({"expires_in_seconds": 3600}),
        )
        .await;
    let expiring = str_field(&issued, "token");
    let expiring_id = str_field(&issued, "id");
    let created = issued["created_at"].as_i64().unwrap_or_default();
    assert_eq!(issued["expires_at"], json!(created + 3_600_000));
    assert_eq!(issued["user_id"], "alice");
    assert_eq!(server.get_ok("/v1/me", &expiring).await["id"], "alice");

    // The list: ids, times and last use; never a secret.
    let list = server
        .get_ok("/v1/admin/users/alice/tokens", ADMIN_KEY)
        .await;
    let text = list.to_string();
    assert!(
        !text.contains(&first) && !text.contains(&expiring),
        "{text}"
    );
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list[0]["id"], json!(expiring_id), "newest first");
    assert!(list[0]["last_used_at"].as_i64().is_some(), "{list}");
    assert_eq!(list[0]["expired"], json!(false));

    // Out-of-range lifetimes are refused, naming the field.
    for seconds in [json!(0), json!(31_536_001), json!(-5)] {
        let body = json!({"expires_in_seconds": seconds});
        let (status, message) = refused(
            &server,
            Method::POST,
            "/v1/admin/users/alice/tokens",
            ADMIN_KEY,
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{seconds}: {message}");
        assert!(message.starts_with("expires_in_seconds"), "{message}");
    }

    // Past its expiry (moved into the past in the database rather than waited for): 401 saying so.
    server
        .exec_sql(&format!(
            "UPDATE tokens SET expires_at = 1000 WHERE id = '{expiring_id}'"
        ))
        .await;
    let (status, message) = refused(&server, Method::GET, "/v1/me", &expiring, None).await;
    assert_eq!(status, 401);
    assert!(message.contains("expired at 1000"), "{message}");
    let list = server
        .get_ok("/v1/admin/users/alice/tokens", ADMIN_KEY)
        .await;
    assert_eq!(list[0]["expired"], json!(true));

    // Revoking: the token is refused at once and the user's open WebSocket closes.
    let first_id = str_field(&list[1], "id");
    let mut ws = open_ws(&server, &first).await;
    let path = format!("/v1/admin/users/alice/tokens/{first_id}");
    let (status, _) = server
        .call(Method::DELETE, &path, Some(ADMIN_KEY), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(close_code(&mut ws).await, Some(1008));
    let (status, message) = refused(&server, Method::GET, "/v1/me", &first, None).await;
    assert_eq!(
        (status, message.as_str()),
        (401, "unknown or revoked token")
    );
    let (status, _) = refused(&server, Method::DELETE, &path, ADMIN_KEY, None).await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// The request opening `GET /v1/ws` as `token`.
fn ws_request(
    server: &TestServer,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = must(
        format!("ws://{}/v1/ws", server.addr).into_client_request(),
        "ws request",
    );
    let header = must(format!("Bearer {token}").parse(), "header value");
    request.headers_mut().insert("authorization", header);
    request
}

async fn open_ws(server: &TestServer, token: &str) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let (stream, _) = must(
        tokio_tungstenite::connect_async(ws_request(server, token)).await,
        "ws connect",
    );
    stream
}

/// The code of the close frame the server sends next (skipping other frames), or `None` if the
/// connection ends without one or nothing comes within [`PATIENCE`].
async fn close_code(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        if let WsMessage::Close(close) = frame.ok()? {
            return close.map(|c| u16::from(c.code));
        }
        tokio::time::sleep(Duration::ZERO).await;
    }
}
