//! The server on PostgreSQL, where PostgreSQL itself is what the test breaks: an unreachable database at
//! start is an error naming it without its password; while PostgreSQL is down requests answer 503
//! `unavailable`, and once it is back the same server serves again, having lost nothing it acknowledged.
//! (Everything else the server does on PostgreSQL is checked by running the other `server_*`, `powers_*`,
//! `sandbox*` and `reload*` tests with `CHATHOOKS_E2E_DATABASE=postgres`.)

use std::time::Duration;

use chathooks::config::{AdminKey, Config};
use chathooks::server;
use chathooks::store::postgres::PoolOptions;
use chathooks_testservers::Postgres;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::sandbox_support::eventually;
use crate::server_support::{ADMIN_KEY, TestServer, must};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_at_start_is_named_without_its_password() {
    let dir = chathooks_tests::temp_dir();
    let config = Config {
        data_dir: dir.path().join("data"),
        plugins_dir: dir.path().join("plugins"),
        // Nothing listens on port 1 of loopback: the connection is refused at once.
        database: Some("postgres://chat:s3cret-Pw@127.0.0.1:1/chat".into()),
        ..Config::default()
    };
    let Err(err) = server::start(&config, AdminKey::new(ADMIN_KEY)).await else {
        panic!("a server started without its database");
    };
    let text = format!("{err:#}");
    assert!(text.contains("127.0.0.1:1"), "names where: {text}");
    assert!(text.contains("cannot connect"), "says what failed: {text}");
    assert!(!text.contains("s3cret-Pw"), "shows the password: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgresql_is_down_requests_get_503_and_the_server_recovers_without_a_restart() {
    let Some(mut pg) = Postgres::start_or_skip() else {
        return;
    };
    let url = must(pg.url_for_new_database(), "a database");
    let server = TestServer::with_config(&[], |config| {
        config.database = Some(url);
        config.db_pool = PoolOptions {
            size: 4,
            wait: Duration::from_millis(500),
        };
    })
    .await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    server.send(&alice, &conv, "before").await;
    let messages = format!("/v1/conversations/{conv}/messages");

    must(pg.pause(), "stop PostgreSQL");
    let (status, body) = server
        .call(
            Method::POST,
            &messages,
            Some(&alice),
            Some(json!({"body": "while down"})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let (status, _) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    must(pg.resume(), "start PostgreSQL again");
    eventually("the server answers again", || async {
        let (status, _) = server.call(Method::GET, "/healthz", None, None).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    server.send(&alice, &conv, "after").await;
    let page = server.get_ok(&messages, &alice).await;
    let bodies: Vec<&str> = page
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(
        bodies,
        ["after", "before"],
        "newest first; the refused send is not there"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_database_is_refused_until_the_first_stops() {
    let Some(pg) = Postgres::shared() else {
        return;
    };
    let url = must(pg.url_for_new_database(), "a database");
    let first = TestServer::with_config(&[], |config| config.database = Some(url.clone())).await;
    let dir = chathooks_tests::temp_dir();
    let second = Config {
        data_dir: dir.path().join("data"),
        plugins_dir: dir.path().join("plugins"),
        database: Some(url.clone()),
        ..Config::default()
    };
    let Err(err) = server::start(&second, AdminKey::new(ADMIN_KEY)).await else {
        panic!("two servers serve one database");
    };
    let text = format!("{err:#}");
    assert!(text.contains("already serving"), "{text}");
    first.stop().await;
    // The first server's session ends with it, and its lock with the session: PostgreSQL ends a session
    // once it sees its connection closed, a moment after the server let go of it.
    let third_dir = chathooks_tests::temp_dir();
    let third = Config {
        data_dir: third_dir.path().join("data"),
        plugins_dir: third_dir.path().join("plugins"),
        database: Some(url),
        ..Config::default()
    };
    let running = eventually(
        "a server takes the database once the first stopped",
        || async { server::start(&third, AdminKey::new(ADMIN_KEY)).await.ok() },
    )
    .await;
    running.finish().await;
}
