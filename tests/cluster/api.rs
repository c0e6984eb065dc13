//! The HTTP calls the cases make on a node, as a user or an operator would.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cluster::ADMIN_KEY;
use crate::node::Node;
use crate::wait::must;

/// An answer: the status and the JSON body (`null` when empty, a string when not JSON).
pub type Answer = (StatusCode, Value);

/// Sends `method path` to `node` as `token` with an optional JSON body. `Err` when no answer came (the
/// node is down, paused, or the connection broke).
pub async fn call(
    node: &Node,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Answer, reqwest::Error> {
    let mut request = node.http.request(method, node.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, value))
}

/// `POST` expecting a 2xx; the JSON answer.
pub async fn post_ok(node: &Node, path: &str, token: &str, body: Value) -> Value {
    let (status, answer) = must(
        call(node, reqwest::Method::POST, path, Some(token), Some(body)).await,
        &format!("POST {path} on {}", node.id),
    );
    assert!(
        status.is_success(),
        "POST {path} on {}: {status} {answer}",
        node.id
    );
    answer
}

/// `GET` expecting 200; the JSON answer.
pub async fn get_ok(node: &Node, path: &str, token: &str) -> Value {
    let (status, answer) = must(
        call(node, reqwest::Method::GET, path, Some(token), None).await,
        &format!("GET {path} on {}", node.id),
    );
    assert_eq!(
        status,
        StatusCode::OK,
        "GET {path} on {}: {answer}",
        node.id
    );
    answer
}

/// Creates user `id` through the admin API of `node`; their token.
pub async fn user(node: &Node, id: &str) -> String {
    let answer = post_ok(
        node,
        "/v1/admin/users",
        ADMIN_KEY,
        json!({"id": id, "name": id.to_uppercase()}),
    )
    .await;
    str_field(&answer, "token")
}

/// Creates a conversation as `token` with `others` on `node`; its id.
pub async fn conversation(node: &Node, token: &str, others: &[&str]) -> String {
    let answer = post_ok(
        node,
        "/v1/conversations",
        token,
        json!({"participant_ids": others}),
    )
    .await;
    str_field(&answer, "id")
}

/// Sends `body` to `conv` as `token` on `node`; the stored message (panics on anything but a 2xx).
pub async fn send(node: &Node, token: &str, conv: &str, body: &str) -> Value {
    let path = format!("/v1/conversations/{conv}/messages");
    post_ok(node, &path, token, json!({"body": body})).await
}

/// Sends `body` with `client_id` to `conv` as `token` on `node`; whatever came back (for cases where a
/// node or the database may be away).
pub async fn try_send(
    node: &Node,
    token: &str,
    conv: &str,
    body: &str,
    client_id: Option<&str>,
) -> Result<Answer, reqwest::Error> {
    let path = format!("/v1/conversations/{conv}/messages");
    let mut message = json!({"body": body});
    if let Some(id) = client_id {
        message["client_id"] = json!(id);
    }
    call(
        node,
        reqwest::Method::POST,
        &path,
        Some(token),
        Some(message),
    )
    .await
}

/// The messages of `conv` as `token` sees them on `node` (newest first, up to `limit`).
pub async fn messages(node: &Node, token: &str, conv: &str, limit: usize) -> Vec<Value> {
    let page = get_ok(
        node,
        &format!("/v1/conversations/{conv}/messages?limit={limit}"),
        token,
    )
    .await;
    page.as_array().cloned().unwrap_or_default()
}

/// Posts a typing state (`begin`, `finished`) for `token` in `conv` on `node`.
pub async fn typing(node: &Node, token: &str, conv: &str, state: &str) {
    let path = format!("/v1/conversations/{conv}/typing");
    post_ok(node, &path, token, json!({"state": state})).await;
}

/// `GET /healthz`'s status, or `None` when the node does not answer.
pub async fn healthz(node: &Node) -> Option<u16> {
    call(node, reqwest::Method::GET, "/healthz", None, None)
        .await
        .ok()
        .map(|(status, _)| status.as_u16())
}

/// `GET /v1/admin/cluster` on `node`, or `None` when it does not answer 200.
pub async fn cluster_view(node: &Node) -> Option<Value> {
    let (status, view) = call(
        node,
        reqwest::Method::GET,
        "/v1/admin/cluster",
        Some(ADMIN_KEY),
        None,
    )
    .await
    .ok()?;
    (status == StatusCode::OK).then_some(view)
}

/// The id of the node that says it holds the sequencer role (a live one), from `node`'s cluster view.
pub async fn sequencer(node: &Node) -> Option<String> {
    let view = cluster_view(node).await?;
    view["nodes"].as_array()?.iter().find_map(|n| {
        (n["is_sequencer"] == true && n["alive"] == true)
            .then(|| n["node_id"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// `value[field]` as a string; panics naming the field otherwise.
pub fn str_field(value: &Value, field: &str) -> String {
    match value[field].as_str() {
        Some(text) => text.to_owned(),
        None => panic!("no string {field:?} in {value}"),
    }
}

/// Sends `body` with `client_id` to `conv` as `token` through `node` until it is acknowledged (a 2xx),
/// retrying the same `client_id` (so never twice) while the node or the database is away; the stored
/// message. Panics after [`crate::wait::PATIENCE`].
pub async fn send_acked(
    node: &Node,
    token: &str,
    conv: &str,
    body: &str,
    client_id: &str,
) -> Value {
    crate::wait::eventually(&format!("{} acknowledges {body:?}", node.id), || async {
        match try_send(node, token, conv, body, Some(client_id)).await {
            Ok((status, message)) if status.is_success() => Some(message),
            _ => None,
        }
    })
    .await
}

/// Three users `u1..u3`, each created on a different node (`uK` on `nK`), in one conversation made by
/// `u1` on n1: the conversation's id and the users' `(id, token)`.
pub async fn three_users_one_conversation(nodes: &[Node]) -> (String, Vec<(String, String)>) {
    let mut users = Vec::new();
    for (i, node) in nodes.iter().enumerate().take(3) {
        let id = format!("u{}", i + 1);
        let token = user(node, &id).await;
        users.push((id, token));
    }
    let conv = conversation(&nodes[0], &users[0].1, &["u2", "u3"]).await;
    (conv, users)
}

/// Users `u1..u3` (`uK` created on `nK`) in `n` conversations of all three, made in turn on n1, n2, n3;
/// the conversation ids and the users' tokens.
pub async fn spread_conversations(nodes: &[Node], n: usize) -> (Vec<String>, Vec<String>) {
    let mut tokens = Vec::new();
    for (i, node) in nodes.iter().take(3).enumerate() {
        tokens.push(user(node, &format!("u{}", i + 1)).await);
    }
    let mut convs = Vec::new();
    for c in 0..n {
        let k = c % 3;
        let others: Vec<String> = (1..=3)
            .filter(|u| *u != k + 1)
            .map(|u| format!("u{u}"))
            .collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        convs.push(conversation(&nodes[k], &tokens[k], &others).await);
    }
    (convs, tokens)
}
