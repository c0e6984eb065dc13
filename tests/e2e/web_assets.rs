//! The web pages as HTTP sees them: every page and file with its content type and security headers,
//! revalidation by ETag, nothing outside the pages' folder reachable, the API's JSON 404 unchanged; the
//! console's live tail (a chat event and a plugin's log line as NDJSON lines; it ends when the server
//! stops, without holding the stop up) and its history; a plugin's rejection names the plugin.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::Value;

use crate::sandbox_support::eventually;
use crate::server_support::{ADMIN_KEY, PATIENCE, TestServer, must};

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    must(
        server
            .http
            .get(format!("{}{path}", server.base))
            .send()
            .await,
        path,
    )
}

/// `GET path` with `If-None-Match: tags`.
async fn get_if_none_match(server: &TestServer, path: &str, tags: &str) -> reqwest::Response {
    must(
        server
            .http
            .get(format!("{}{path}", server.base))
            .header(IF_NONE_MATCH, tags)
            .send()
            .await,
        path,
    )
}

/// `GET /v1/admin/tail` with the admin key: the open stream.
async fn open_tail(server: &TestServer) -> reqwest::Response {
    must(
        server
            .http
            .get(format!("{}/v1/admin/tail", server.base))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await,
        "tail",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_files_come_with_their_type_and_a_strict_policy() {
    let server = TestServer::start().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/console", "text/html"),
        ("/console/", "text/html"),
        ("/chat", "text/html"),
        ("/chat/", "text/html"),
        ("/ui/chat/chat.js", "text/javascript"),
        ("/ui/console/console.js", "text/javascript"),
        ("/ui/common/base.css", "text/css"),
        ("/ui/common/icon.svg", "image/svg+xml"),
    ] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        let headers = answer.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(
            header(CONTENT_TYPE.as_str()).starts_with(kind),
            "{path}: {headers:?}"
        );
        // The policy the pages are written for, word for word.
        assert_eq!(
            header(CONTENT_SECURITY_POLICY.as_str()),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        // Revalidation: the same ETag gets a 304 without a body.
        let etag = header(ETAG.as_str());
        assert!(etag.starts_with('"'), "{path}: {etag}");
        let again = get_if_none_match(&server, path, &etag).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(must(again.bytes().await, path).is_empty());
    }
    // HEAD: the same headers, no body.
    let head = must(
        server
            .http
            .head(format!("{}/console", server.base))
            .send()
            .await,
        "HEAD /console",
    );
    assert_eq!(head.status(), StatusCode::OK);
    assert!(
        head.headers()[CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html"))
    );
    assert!(head.headers().contains_key(CONTENT_SECURITY_POLICY));
    assert!(head.headers().contains_key(ETAG));
    assert!(must(head.bytes().await, "HEAD body").is_empty());
    // A list of tags, weak or not, revalidates when one matches; another tag gets the file.
    let etag = get(&server, "/").await.headers()[ETAG].clone();
    let etag = etag.to_str().unwrap_or_default();
    for (tags, status) in [
        (format!("\"other\", W/{etag}"), StatusCode::NOT_MODIFIED),
        ("\"other\"".to_owned(), StatusCode::OK),
    ] {
        let answer = get_if_none_match(&server, "/", &tags).await;
        assert_eq!(answer.status(), status, "{tags}");
    }
    let page = must(get(&server, "/chat").await.text().await, "the chat page");
    assert!(page.contains("/ui/chat/chat.js"), "{page}");

    // Nothing outside the pages' folder, however the path is spelled; unknown files are JSON 404s.
    for path in [
        "/ui/../Cargo.toml",
        "/ui/%2e%2e/Cargo.toml",
        "/ui/chat/%2e%2e/%2e%2e/src/lib.rs",
        "/ui/..%2fCargo.toml",
        "/ui/%2fetc%2fpasswd",
        "/ui/chat//chat.js",
        "/ui/nothing.js",
    ] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = must(answer.json().await, path);
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    // The API's own answers are unchanged.
    let (status, body) = server
        .call(reqwest::Method::GET, "/v1/no-such-route", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_dir_serves_the_pages_from_a_folder_as_they_change() {
    let pages = chathooks_tests::temp_dir();
    let chat = pages.path().join("chat");
    must(std::fs::create_dir_all(&chat), "a chat folder");
    must(
        std::fs::write(chat.join("index.html"), "<p>first</p>"),
        "a page",
    );
    let dir = pages.path().to_path_buf();
    let server = TestServer::with_config(&[], move |config| config.web_dir = Some(dir)).await;
    let body = |answer: reqwest::Response| async { must(answer.text().await, "a page") };
    assert_eq!(body(get(&server, "/chat").await).await, "<p>first</p>");
    // Read on every request: an edit shows at once, with a new ETag.
    must(
        std::fs::write(chat.join("index.html"), "<p>second</p>"),
        "an edit",
    );
    let answer = get(&server, "/chat").await;
    assert!(answer.headers().contains_key(CONTENT_SECURITY_POLICY));
    assert_eq!(body(answer).await, "<p>second</p>");
    // Only that folder: the embedded files are not mixed in, and nothing above it is reachable.
    for path in [
        "/console",
        "/ui/common/api.js",
        "/ui/../index.html",
        "/ui/chat/%2e%2e/%2e%2e/x",
    ] {
        assert_eq!(
            get(&server, path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_streams_events_and_plugin_log_lines_to_the_admin_only() {
    let server = TestServer::with_plugins(&[chathooks_tests::example("message_stats")]).await;
    let (status, _) = server
        .call(reqwest::Method::GET, "/v1/admin/tail", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let answer = open_tail(&server).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()[CONTENT_TYPE].to_str().ok(),
        Some("application/x-ndjson")
    );
    let mut answer = answer;
    let mut buffered = Vec::new();
    let mut lines: Vec<Value> = Vec::new();
    let mut next_line = async || -> Value {
        loop {
            if let Some(end) = buffered.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffered.drain(..=end).collect();
                return must(serde_json::from_slice(&line), "an NDJSON line");
            }
            let chunk = tokio::time::timeout(PATIENCE, answer.chunk()).await;
            let chunk = must(must(chunk, "a tail line in time"), "a tail chunk");
            buffered.extend_from_slice(&chunk.expect("the tail went on"));
        }
    };
    let hello = next_line().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["node"], Value::Null);

    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    server.send(&alice, &conv, "hello tail").await;
    while !(lines
        .iter()
        .any(|l| l["type"] == "event" && l["event"]["payload"]["message"]["body"] == "hello tail")
        && lines
            .iter()
            .any(|l| l["type"] == "log" && l["plugin"] == "message_stats"))
    {
        lines.push(next_line().await);
    }
    let log = lines
        .iter()
        .find(|l| l["type"] == "log")
        .cloned()
        .unwrap_or_default();
    assert_eq!(log["level"], "info", "{log}");
    assert!(log["at"].as_i64().is_some_and(|at| at > 0), "{log}");
    assert!(
        log["message"]
            .as_str()
            .is_some_and(|m| m.contains("counted message")),
        "{log}"
    );

    drop(answer);

    // The history: samples whose latency is that of the calls between them (the call's counters land a
    // moment after its log line).
    let history = eventually("a sample with the counter's call", || async {
        server.running.state.history.sample().await.ok()?;
        let history = server.get_ok("/v1/admin/history", ADMIN_KEY).await;
        let newest = history["samples"].as_array()?.last()?.clone();
        (newest["plugins"][0]["calls"] == 1).then_some(history)
    })
    .await;
    assert_eq!(history["interval_ms"], 5000);
    // The sample that first counts the call (the one taken every 5 s may have been first) carries its
    // latency.
    let samples = history["samples"].as_array().cloned().unwrap_or_default();
    let first = samples
        .iter()
        .find(|s| s["plugins"][0]["calls"] == 1)
        .cloned()
        .unwrap_or_default();
    let stats = &first["plugins"][0];
    assert_eq!(stats["name"], "message_stats", "{history}");
    assert!(stats["p99_ms"].as_f64().is_some(), "{history}");
    let newest = samples.last().cloned().unwrap_or_default();
    assert!(
        newest["events"].as_i64().is_some_and(|n| n >= 2),
        "{history}"
    );
    server
        .running
        .state
        .history
        .sample()
        .await
        .expect("a sample");
    let quiet = server.get_ok("/v1/admin/history", ADMIN_KEY).await;
    let quiet = quiet["samples"].as_array().cloned().unwrap_or_default();
    let latest = &quiet[quiet.len() - 1]["plugins"][0];
    assert_eq!(latest["calls"], 1);
    assert_eq!(latest["p99_ms"], Value::Null, "no calls since: {latest}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_tail_ends_when_the_server_stops_and_does_not_hold_it_up() {
    let server = TestServer::start().await;
    let mut tail = open_tail(&server).await;
    assert_eq!(tail.status(), StatusCode::OK);
    let hello = must(
        must(
            tokio::time::timeout(PATIENCE, tail.chunk()).await,
            "hello in time",
        ),
        "the hello chunk",
    );
    assert!(
        hello.is_some_and(|line| line.starts_with(b"{") && line.ends_with(b"\n")),
        "one NDJSON line"
    );
    // `stop` fails the test unless the server stops cleanly within PATIENCE, the tail still open.
    server.stop().await;
    let mut rest = Vec::new();
    loop {
        let chunk = tokio::time::timeout(PATIENCE, tail.chunk()).await;
        match must(must(chunk, "the tail's end in time"), "a clean end") {
            Some(bytes) => rest.extend_from_slice(&bytes),
            None => break,
        }
    }
    // Whatever came after the hello is whole lines (a ping, say), and nothing is cut off.
    assert!(rest.is_empty() || rest.ends_with(b"\n"), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_names_the_plugin_in_the_error() {
    let server = TestServer::with_plugins(&[chathooks_tests::example("profanity_filter")]).await;
    let alice = server.user("alice").await;
    let conv = server.conversation(&alice, &[]).await;
    let (status, answer) = server
        .call(
            reqwest::Method::POST,
            &format!("/v1/conversations/{conv}/messages"),
            Some(&alice),
            Some(serde_json::json!({"body": "damn!"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["code"], "rejected_by_plugin", "{answer}");
    assert_eq!(answer["error"]["plugin"], "profanity_filter", "{answer}");
    // Other errors have no `plugin` field at all (not `null`).
    let (status, missing) = server
        .call(reqwest::Method::GET, "/v1/no-such-route", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing["error"].get("plugin").is_none(), "{missing}");
    server.stop().await;
}
