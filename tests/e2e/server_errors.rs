//! Bad requests over real HTTP: each gets the right status, a stable code and a message naming the
//! problem (the field, the limit), and stores nothing.

use reqwest::Method;
use serde_json::json;

use crate::server_support::{ADMIN_KEY, TestServer};

/// One bad request and what it must get.
struct Bad {
    method: Method,
    /// `{conv}` is replaced by a conversation of the caller.
    path: &'static str,
    /// Sent as the admin key instead of alice's token.
    admin: bool,
    /// `None` sends no body at all.
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
    /// The error message contains this.
    says: &'static str,
}

fn bad(
    method: Method,
    path: &'static str,
    body: Option<&str>,
    status: u16,
    code: &'static str,
    says: &'static str,
) -> Bad {
    Bad {
        method,
        path,
        admin: false,
        body: body.map(|b| b.as_bytes().to_vec()),
        status,
        code,
        says,
    }
}

fn cases() -> Vec<Bad> {
    use Method as M;
    let convs = "/v1/conversations";
    let msgs = "/v1/conversations/{conv}/messages";
    let big = json!({"body": "x".repeat(100 * 1024)})
        .to_string()
        .into_bytes();
    vec![
        bad(
            M::POST,
            convs,
            Some("{\"participant_ids\": ["),
            400,
            "malformed_json",
            "not valid JSON",
        ),
        bad(M::POST, convs, Some(""), 400, "empty_body", "empty"),
        bad(M::POST, convs, Some("  \n"), 400, "empty_body", "empty"),
        bad(M::POST, convs, None, 400, "empty_body", "empty"),
        bad(
            M::POST,
            convs,
            Some(r#"{"participant_ids": "bob"}"#),
            422,
            "invalid",
            "participant_ids: invalid type: string",
        ),
        bad(
            M::POST,
            convs,
            Some(r#"{"participant_ids": ["bob", 7]}"#),
            422,
            "invalid",
            "participant_ids[1]: invalid type: integer",
        ),
        bad(
            M::POST,
            convs,
            Some(r#"{"participant_ids": ["bob"], "titel": "x"}"#),
            422,
            "invalid",
            "unknown field `titel`",
        ),
        bad(
            M::POST,
            convs,
            Some(r#"{"title": "x"}"#),
            422,
            "invalid",
            "missing field `participant_ids`",
        ),
        bad(
            M::POST,
            convs,
            Some("[1, 2]"),
            422,
            "invalid",
            "must be a JSON object",
        ),
        bad(
            M::POST,
            msgs,
            Some(r#"{"body": 5}"#),
            422,
            "invalid",
            "body: invalid type: integer",
        ),
        bad(
            M::POST,
            msgs,
            Some(r#"{"body": "hi", "metadata": [1]}"#),
            422,
            "invalid",
            "metadata",
        ),
        bad(
            M::POST,
            "/v1/conversations/{conv}/typing",
            Some(r#"{"state": "dancing"}"#),
            422,
            "invalid",
            "state: unknown variant `dancing`",
        ),
        bad(
            M::GET,
            "/v1/conversations/{conv}/messages?limit=many",
            None,
            422,
            "invalid",
            "limit",
        ),
        bad(
            M::PATCH,
            "/v1/conversations/{conv}",
            Some(r#"{"title": 3}"#),
            422,
            "invalid",
            "title: invalid type: integer",
        ),
        bad(
            M::POST,
            "/v1/conversations/{conv}/read",
            Some(r#"{"message_id": 1}"#),
            422,
            "invalid",
            "message_id",
        ),
        bad(
            M::POST,
            "/v1/conversations/nope/messages",
            Some(r#"{"body": "hi"}"#),
            404,
            "not_found",
            "nope",
        ),
        bad(
            M::GET,
            "/v1/nothing-here",
            None,
            404,
            "not_found",
            "no such route",
        ),
        bad(M::PUT, "/v1/me", None, 405, "method_not_allowed", "method"),
        Bad {
            body: Some(big),
            ..bad(M::POST, msgs, None, 413, "payload_too_large", "65536 bytes")
        },
        Bad {
            admin: true,
            ..bad(
                M::POST,
                "/v1/admin/dead-letters/abc/replay",
                None,
                400,
                "bad_request",
                "abc",
            )
        },
        Bad {
            admin: true,
            ..bad(
                M::POST,
                "/v1/admin/users",
                Some(r#"{"id": "no spaces", "name": "x"}"#),
                422,
                "invalid",
                "id",
            )
        },
        Bad {
            admin: true,
            ..bad(
                M::POST,
                "/v1/admin/users",
                Some(r#"{"id": "alice", "name": "Again"}"#),
                409,
                "conflict",
                "alice",
            )
        },
        Bad {
            admin: true,
            ..bad(
                M::GET,
                "/v1/admin/dead-letters?after=x",
                None,
                422,
                "invalid",
                "after",
            )
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_status_and_a_message_naming_the_problem() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let mut failures = Vec::new();
    for case in cases() {
        let path = case.path.replace("{conv}", &conv);
        let token = if case.admin {
            ADMIN_KEY
        } else {
            alice.as_str()
        };
        let (status, answer) = server
            .raw(case.method.clone(), &path, Some(token), case.body)
            .await;
        let code = answer["error"]["code"].as_str().unwrap_or_default();
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        if status.as_u16() != case.status || code != case.code || !message.contains(case.says) {
            failures.push(format!(
                "{} {}: expected {} {} {:?}, got {status} {answer}",
                case.method, case.path, case.status, case.code, case.says
            ));
        }
    }
    let messages = format!("/v1/conversations/{conv}/messages");
    assert_eq!(
        server.get_ok(&messages, &alice).await,
        json!([]),
        "nothing stored"
    );
    server.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_before_the_body() {
    let server = TestServer::start().await;
    for token in [None, Some("cht_wrong")] {
        let (status, answer) = server
            .raw(
                Method::POST,
                "/v1/conversations",
                token,
                Some(b"{not json".to_vec()),
            )
            .await;
        assert_eq!(status.as_u16(), 401, "{answer}");
        assert_eq!(answer["error"]["code"], "unauthorized");
    }
    let (status, answer) = server.raw(Method::GET, "/v1/me", None, None).await;
    assert_eq!(status.as_u16(), 401);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Authorization: Bearer"))
    );
    server.stop().await;
}
