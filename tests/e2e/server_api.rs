//! The REST API over real HTTP: who may do what, the OpenAPI document, users and tokens. (User
//! administration in depth: `server_users`; the document's field rules against the server: `server_errors`.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server_support::{ADMIN_KEY, TestServer, must, str_field};

/// Who calls, in the order of [`Row::expect`].
const ROLES: [&str; 6] = [
    "outsider",
    "participant",
    "conv admin",
    "admin key",
    "wrong token",
    "no token",
];

/// One route and the status each role gets.
struct Row {
    method: Method,
    /// With `{conv}`, `{msg}` (alice's message), `{bob_msg}` (bob's message) filled in per case.
    path: &'static str,
    body: Option<Value>,
    /// outsider (carol), participant (bob), conversation admin (alice), admin key, wrong token, no token.
    expect: [u16; 6],
}

fn row(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 6]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

/// Every route of the API with who may call it. The OpenAPI test checks this table against the document,
/// so a new route must be added here (and so get its authorization tested).
fn table() -> Vec<Row> {
    use Method as M;
    const USER_ONLY: [u16; 6] = [200, 200, 200, 401, 401, 401];
    vec![
        row(M::GET, "/healthz", None, [200; 6]),
        row(M::GET, "/metrics", None, [200; 6]),
        row(M::GET, "/v1/openapi.json", None, [200; 6]),
        row(M::GET, "/v1/me", None, USER_ONLY),
        row(
            M::POST,
            "/v1/me/devices",
            Some(json!({"platform": "ios", "token": "device-token"})),
            [201, 201, 201, 401, 401, 401],
        ),
        row(M::GET, "/v1/me/devices", None, USER_ONLY),
        row(
            M::DELETE,
            "/v1/me/devices/never-registered",
            None,
            [404, 404, 404, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/conversations",
            Some(json!({"participant_ids": ["bob"]})),
            [201, 201, 201, 401, 401, 401],
        ),
        row(M::GET, "/v1/conversations", None, USER_ONLY),
        row(
            M::GET,
            "/v1/conversations/{conv}",
            None,
            [404, 200, 200, 401, 401, 401],
        ),
        row(
            M::PATCH,
            "/v1/conversations/{conv}",
            Some(json!({"title": "new"})),
            [404, 403, 200, 401, 401, 401],
        ),
        row(
            M::DELETE,
            "/v1/conversations/{conv}",
            None,
            [404, 403, 204, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/conversations/{conv}/participants",
            Some(json!({"user_ids": ["dave"]})),
            [404, 403, 200, 401, 401, 401],
        ),
        row(
            M::DELETE,
            "/v1/conversations/{conv}/participants/bob",
            None,
            [404, 200, 200, 401, 401, 401],
        ),
        row(
            M::DELETE,
            "/v1/conversations/{conv}/participants/alice",
            None,
            [404, 403, 200, 401, 401, 401],
        ),
        row(
            M::PUT,
            "/v1/conversations/{conv}/participants/bob/role",
            Some(json!({"role": "moderator"})),
            [404, 403, 200, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/conversations/{conv}/owner",
            Some(json!({"user_id": "bob"})),
            [404, 403, 200, 401, 401, 401],
        ),
        // Moderators and admins only (bob is a plain member here).
        row(
            M::POST,
            "/v1/conversations/{conv}/bans",
            Some(json!({"user_id": "dave"})),
            [404, 403, 201, 401, 401, 401],
        ),
        row(
            M::GET,
            "/v1/conversations/{conv}/bans",
            None,
            [404, 403, 200, 401, 401, 401],
        ),
        // No one is banned in this case: the admin finds no ban to lift.
        row(
            M::DELETE,
            "/v1/conversations/{conv}/bans/dave",
            None,
            [404, 403, 404, 401, 401, 401],
        ),
        // Blocks are every user's own: each caller blocks dave, then lifts it.
        row(
            M::PUT,
            "/v1/me/blocks/dave",
            None,
            [201, 201, 201, 401, 401, 401],
        ),
        row(M::GET, "/v1/me/blocks", None, USER_ONLY),
        row(
            M::DELETE,
            "/v1/me/blocks/dave",
            None,
            [204, 204, 204, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/conversations/{conv}/messages",
            Some(json!({"body": "hi"})),
            [404, 201, 201, 401, 401, 401],
        ),
        row(
            M::GET,
            "/v1/conversations/{conv}/messages",
            None,
            [404, 200, 200, 401, 401, 401],
        ),
        row(
            M::PATCH,
            "/v1/messages/{msg}",
            Some(json!({"body": "edited"})),
            [404, 403, 200, 401, 401, 401],
        ),
        row(
            M::DELETE,
            "/v1/messages/{msg}",
            None,
            [404, 403, 200, 401, 401, 401],
        ),
        row(
            M::DELETE,
            "/v1/messages/{bob_msg}",
            None,
            [404, 200, 200, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/conversations/{conv}/typing",
            Some(json!({"state": "begin"})),
            [404, 204, 204, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/messages/{bob_msg}/delivered",
            None,
            [404, 200, 200, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/conversations/{conv}/read",
            Some(json!({})),
            [404, 200, 200, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/messages/{msg}/reactions",
            Some(json!({"emoji": "🎉"})),
            [404, 201, 201, 401, 401, 401],
        ),
        row(
            M::DELETE,
            "/v1/messages/{msg}/reactions/%F0%9F%91%8D",
            None,
            [404, 204, 204, 401, 401, 401],
        ),
        row(
            M::GET,
            "/v1/messages/{msg}/replies",
            None,
            [404, 200, 200, 401, 401, 401],
        ),
        row(
            M::GET,
            "/v1/conversations/{conv}/threads",
            None,
            [404, 200, 200, 401, 401, 401],
        ),
        row(
            M::GET,
            "/v1/conversations/{conv}/held",
            None,
            [404, 200, 200, 401, 401, 401],
        ),
        // No message is held in this case: deciding on an unknown one is a 404 for every user.
        row(
            M::POST,
            "/v1/held/m_never_held/approve",
            None,
            [404, 404, 404, 401, 401, 401],
        ),
        row(
            M::POST,
            "/v1/held/m_never_held/reject",
            Some(json!({})),
            [404, 404, 404, 401, 401, 401],
        ),
        // Presence is for every signed-in user, as in Stream and CometChat.
        row(M::GET, "/v1/users/bob/presence", None, USER_ONLY),
        row(M::GET, "/v1/presence?user_ids=alice,bob", None, USER_ONLY),
        // A plain GET is not a WebSocket handshake: authenticated callers get 400, others 401.
        row(M::GET, "/v1/ws", None, [400, 400, 400, 401, 401, 401]),
        row(
            M::POST,
            "/v1/admin/users",
            Some(json!({"id": "erin", "name": "Erin"})),
            [401, 401, 401, 201, 401, 401],
        ),
        row(
            M::GET,
            "/v1/admin/users",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        row(
            M::GET,
            "/v1/admin/users/bob",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        // dave only: deactivating a user whose token the table uses would change the later rows.
        row(
            M::POST,
            "/v1/admin/users/dave/deactivate",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        row(
            M::POST,
            "/v1/admin/users/dave/reactivate",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        row(
            M::POST,
            "/v1/admin/users/bob/tokens",
            None,
            [401, 401, 401, 201, 401, 401],
        ),
        row(
            M::GET,
            "/v1/admin/users/bob/tokens",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        row(
            M::DELETE,
            "/v1/admin/users/bob/tokens/t_never_issued",
            None,
            [401, 401, 401, 404, 401, 401],
        ),
        row(
            M::GET,
            "/v1/admin/plugins",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        row(
            M::POST,
            "/v1/admin/plugins/reload",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        // Plugin operations on a plugin that is not there: the admin key reaches the check.
        row(
            M::PUT,
            "/v1/admin/plugins/nobody",
            Some(json!({"wasm": "AGFzbQ=="})),
            [401, 401, 401, 422, 401, 401],
        ),
        row(
            M::GET,
            "/v1/admin/plugins/nobody/settings",
            None,
            [401, 401, 401, 404, 401, 401],
        ),
        row(
            M::PATCH,
            "/v1/admin/plugins/nobody/settings",
            Some(json!({"greeting": "hi"})),
            [401, 401, 401, 404, 401, 401],
        ),
        row(
            M::POST,
            "/v1/admin/plugins/nobody/enable",
            None,
            [401, 401, 401, 404, 401, 401],
        ),
        row(
            M::POST,
            "/v1/admin/plugins/nobody/disable",
            None,
            [401, 401, 401, 404, 401, 401],
        ),
        row(
            M::GET,
            "/v1/admin/dead-letters",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        row(
            M::POST,
            "/v1/admin/dead-letters/999/replay",
            None,
            [401, 401, 401, 404, 401, 401],
        ),
        row(
            M::GET,
            "/v1/admin/history",
            None,
            [401, 401, 401, 200, 401, 401],
        ),
        // A stream that does not end: its status is checked without reading the body.
        row(M::GET, TAIL, None, [401, 401, 401, 200, 401, 401]),
        // A server on its own is not a cluster node: 404 `not_a_cluster` (tests/cluster covers a node).
        row(
            M::GET,
            "/v1/admin/cluster",
            None,
            [401, 401, 401, 404, 401, 401],
        ),
    ]
}

/// The console's live tail: an endless stream.
const TAIL: &str = "/v1/admin/tail";

/// A fresh conversation of alice (admin) and bob, one message from each, and a 👍 from each on alice's.
struct Case {
    conv: String,
    msg: String,
    bob_msg: String,
}

async fn fresh_case(server: &TestServer, alice: &str, bob: &str) -> Case {
    let conv = server.conversation(alice, &["bob"]).await;
    let msg = str_field(&server.send(alice, &conv, "from alice").await, "id");
    let bob_msg = str_field(&server.send(bob, &conv, "from bob").await, "id");
    for token in [alice, bob] {
        let path = format!("/v1/messages/{msg}/reactions");
        server.post_ok(&path, token, json!({"emoji": "👍"})).await;
    }
    Case { conv, msg, bob_msg }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_table() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    server.user("dave").await;
    let mut failures = Vec::new();
    for row in table() {
        for (role, expected) in ROLES.iter().zip(row.expect) {
            let case = fresh_case(&server, &alice, &bob).await;
            let path = row
                .path
                .replace("{conv}", &case.conv)
                .replace("{bob_msg}", &case.bob_msg)
                .replace("{msg}", &case.msg);
            let token = match *role {
                "outsider" => Some(carol.as_str()),
                "participant" => Some(bob.as_str()),
                "conv admin" => Some(alice.as_str()),
                "admin key" => Some(ADMIN_KEY),
                "wrong token" => Some("cht_0000000000000000000000000000"),
                _ => None,
            };
            let (status, body) = if row.path == TAIL && expected == 200 {
                let mut request = server.http.get(format!("{}{TAIL}", server.base));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                // The headers only: dropping the answer ends the stream.
                let answer = must(request.send().await, TAIL);
                (answer.status(), serde_json::Value::Null)
            } else {
                server
                    .call(row.method.clone(), &path, token, row.body.clone())
                    .await
            };
            if status.as_u16() != expected {
                failures.push(format!(
                    "{} {} as {role}: expected {expected}, got {status} {body}",
                    row.method, row.path
                ));
            }
            if !status.is_success() && body["error"]["code"].as_str().is_none() {
                failures.push(format!(
                    "{} {} as {role}: not an error body: {body}",
                    row.method, row.path
                ));
            }
        }
    }
    server.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_in_the_openapi_document() {
    let server = TestServer::start().await;
    let (status, doc) = server
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    // Written on the first request and kept: the second answer is the same JSON document.
    let again = server
        .http
        .get(format!("{}/v1/openapi.json", server.base))
        .send()
        .await
        .expect("GET /v1/openapi.json");
    assert_eq!(
        again.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(again.json::<Value>().await.ok().as_ref(), Some(&doc));
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let template = |path: &str| {
        path.replace("{conv}", "{id}")
            .replace("{bob_msg}", "{id}")
            .replace("{msg}", "{id}")
            .replace("/participants/bob", "/participants/{user_id}")
            .replace("/bans/dave", "/bans/{user_id}")
            .replace("/blocks/dave", "/blocks/{user_id}")
            .replace("/participants/alice", "/participants/{user_id}")
            .replace("/%F0%9F%91%8D", "/{emoji}")
            .replace("/bob/", "/{id}/")
            .replace("/dave/", "/{id}/")
            .replace("/users/bob", "/users/{id}")
            .replace("/tokens/t_never_issued", "/tokens/{token_id}")
            .replace("/999/", "/{id}/")
            .replace("/devices/never-registered", "/devices/{token}")
            .replace("/held/m_never_held/", "/held/{id}/")
            .replace("?user_ids=alice,bob", "")
            .replace("/plugins/nobody", "/plugins/{name}")
    };
    let mut in_table = std::collections::BTreeSet::new();
    for row in table() {
        let path = template(row.path);
        let method = row.method.as_str().to_lowercase();
        assert!(
            paths.get(&path).and_then(|p| p.get(&method)).is_some(),
            "{method} {path} is not in the OpenAPI document"
        );
        in_table.insert((method, path));
    }
    for (path, item) in &paths {
        for method in item
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            assert!(
                in_table.contains(&(method.clone(), path.clone())),
                "{method} {path} is documented but not in the authorization table"
            );
        }
    }
    // Request and response schemas come from the handlers' types.
    let schemas = &doc["components"]["schemas"];
    for name in [
        "Message",
        "Conversation",
        "UserConversation",
        "SendMessage",
        "ErrorBody",
    ] {
        assert!(schemas.get(name).is_some(), "schema {name} missing");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_tokens_and_health() {
    let server = TestServer::start().await;
    let (status, health) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok"})));
    let alice = server.user("alice").await;
    let me = server.get_ok("/v1/me", &alice).await;
    assert_eq!(
        (me["id"].clone(), me["name"].clone()),
        (json!("alice"), json!("ALICE"))
    );
    let issued = server
        .post_ok("/v1/admin/users/alice/tokens", ADMIN_KEY, json!(null))
        .await;
    let second = str_field(&issued, "token");
    assert_ne!(second, alice);
    assert_eq!(server.get_ok("/v1/me", &second).await["id"], "alice");
    assert_eq!(
        server.get_ok("/v1/me", &alice).await["id"],
        "alice",
        "earlier tokens stay valid"
    );
    server.stop().await;
}
