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

/// One input that the OpenAPI document once allowed and the server refused (issue 11): what the document
/// must now say at `pointer`, and what the server answers.
struct Agreement {
    what: &'static str,
    method: Method,
    /// `{conv}` and `{msg}` are replaced by a conversation of the caller and a message in it.
    path: &'static str,
    admin: bool,
    body: Option<&'static str>,
    /// A JSON pointer into the document (`~1` for `/`) and the value it must hold there.
    pointer: String,
    documented: serde_json::Value,
    status: u16,
    /// The error message starts with this (empty: a success).
    says: &'static str,
}

fn agreements() -> Vec<Agreement> {
    use Method as M;
    let schema = |name: &str, rest: &str| format!("/components/schemas/{name}/{rest}");
    let case = |what, method, path, body, pointer: String, documented, status, says| Agreement {
        what,
        method,
        path,
        admin: false,
        body,
        pointer,
        documented,
        status,
        says,
    };
    vec![
        Agreement {
            admin: true,
            ..case(
                "an empty user id",
                M::POST,
                "/v1/admin/users",
                Some(r#"{"id": "", "name": "x"}"#),
                schema("NewUser", "properties/id/minLength"),
                json!(1),
                422,
                "id: must be 1-64 characters",
            )
        },
        Agreement {
            admin: true,
            ..case(
                "a blank user name",
                M::POST,
                "/v1/admin/users",
                Some(r#"{"id": "erin", "name": " "}"#),
                schema("NewUser", "properties/name/minLength"),
                json!(1),
                422,
                "name: must not be blank",
            )
        },
        case(
            "an empty message",
            M::POST,
            "/v1/conversations/{conv}/messages",
            Some(r#"{"body": ""}"#),
            schema("SendMessage", "anyOf/1/properties/metadata/minProperties"),
            json!(1),
            422,
            "body: a message needs a body that is not blank",
        ),
        case(
            "an edit that changes nothing",
            M::PATCH,
            "/v1/messages/{msg}",
            Some("{}"),
            schema("EditMessage", "anyOf/0/required"),
            json!(["body"]),
            422,
            "body: give a new body, new metadata or both",
        ),
        case(
            "no users to add",
            M::POST,
            "/v1/conversations/{conv}/participants",
            Some(r#"{"user_ids": []}"#),
            schema("AddParticipants", "properties/user_ids/minItems"),
            json!(1),
            422,
            "user_ids: must have 1-1000 items",
        ),
        case(
            "an empty emoji",
            M::POST,
            "/v1/messages/{msg}/reactions",
            Some(r#"{"emoji": ""}"#),
            schema("AddReaction", "properties/emoji/minLength"),
            json!(1),
            422,
            "emoji: must be 1-64 characters",
        ),
        case(
            "an empty device platform",
            M::POST,
            "/v1/me/devices",
            Some(r#"{"platform": "", "token": "t"}"#),
            schema("AddDevice", "properties/platform/minLength"),
            json!(1),
            422,
            "platform: must be 1-32 characters",
        ),
        case(
            "an empty device token",
            M::POST,
            "/v1/me/devices",
            Some(r#"{"platform": "ios", "token": ""}"#),
            schema("AddDevice", "properties/token/minLength"),
            json!(1),
            422,
            "token: must be 1-4096 characters",
        ),
        case(
            "metadata that is not an object",
            M::POST,
            "/v1/conversations",
            Some(r#"{"participant_ids": [], "metadata": [null]}"#),
            schema("CreateConversation", "properties/metadata/type"),
            json!(["object", "null"]),
            422,
            "metadata: must be a JSON object",
        ),
        case(
            "a null body where the body is optional",
            M::POST,
            "/v1/conversations/{conv}/read",
            Some("null"),
            "/paths/~1v1~1conversations~1{id}~1read/post/requestBody/content/application~1json/schema/oneOf/0"
                .to_owned(),
            json!({"type": "null"}),
            200,
            "",
        ),
        case(
            "a page of no messages",
            M::GET,
            "/v1/conversations/{conv}/messages?limit=0",
            None,
            "/paths/~1v1~1conversations~1{id}~1messages/get/parameters/3/schema/minimum".to_owned(),
            json!(1),
            422,
            "limit: must be 1-200, not 0",
        ),
        case(
            "a page over the maximum",
            M::GET,
            "/v1/conversations/{conv}/messages?limit=201",
            None,
            "/paths/~1v1~1conversations~1{id}~1messages/get/parameters/3/schema/maximum".to_owned(),
            json!(200),
            422,
            "limit: must be 1-200, not 201",
        ),
        case(
            "an unknown participant",
            M::POST,
            "/v1/conversations",
            Some(r#"{"participant_ids": ["bob", "zed"]}"#),
            schema("CreateConversation", "properties/participant_ids/items/pattern"),
            json!("^[A-Za-z0-9_.-]*$"),
            422,
            "participant_ids[1]: there is no user \"zed\"",
        ),
        case(
            "an unknown user to add",
            M::POST,
            "/v1/conversations/{conv}/participants",
            Some(r#"{"user_ids": ["zed"]}"#),
            schema("AddParticipants", "properties/user_ids/items/maxLength"),
            json!(64),
            422,
            "user_ids[0]: there is no user \"zed\"",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_the_server_agree_on_each_field() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    let msg = server.send(&alice, &conv, "hi").await;
    let msg = msg["id"].as_str().unwrap_or_default().to_owned();
    let (_, doc) = server
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await;
    let mut failures = Vec::new();
    for case in agreements() {
        let documented = doc.pointer(&case.pointer);
        if documented != Some(&case.documented) {
            failures.push(format!(
                "{}: the document has {documented:?} at {}, expected {}",
                case.what, case.pointer, case.documented
            ));
        }
        let path = case.path.replace("{conv}", &conv).replace("{msg}", &msg);
        let token = if case.admin { ADMIN_KEY } else { &alice };
        let body = case.body.map(|b| b.as_bytes().to_vec());
        let (status, answer) = server.raw(case.method, &path, Some(token), body).await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        if status.as_u16() != case.status || !message.starts_with(case.says) {
            failures.push(format!(
                "{}: expected {} {:?}, got {status} {answer}",
                case.what, case.status, case.says
            ));
        }
    }
    server.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
