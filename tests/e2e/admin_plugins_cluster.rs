//! Operating plugins over the admin API on a cluster node (PostgreSQL and NATS): settings and disabling
//! are stored for the cluster and reach the node through its catalog mirror; an upload goes into the
//! catalog, checked first. Skips without PostgreSQL or NATS. (The 3-node cases are in `tests/cluster`.)

use base64::Engine;
use chathooks::config::ClusterSettings;
use chathooks_testservers::{Nats, Postgres};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::manifest_v2::{WELCOME_V2, greeting_for};
use crate::sandbox_support::{eventually, plugin};
use crate::server_support::{ADMIN_KEY, TestServer, must};

fn greeting(server: &TestServer) -> Option<Value> {
    let running = server.running.state.chat.registry().get("welcome_bot")?;
    running.settings.powers.config.get("greeting").cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_disabling_and_uploads_reach_a_cluster_node_through_the_catalog() {
    let Some(pg) = Postgres::shared() else {
        return;
    };
    let Some(nats) = Nats::start_or_skip() else {
        return;
    };
    let url = must(pg.url_for_new_database(), "a database");
    let settings = ClusterSettings {
        nats: vec![nats.url()],
        node_id: "n1".to_owned(),
        name: "admin-e2e".to_owned(),
    };
    let welcome = chathooks_tests::example("welcome_bot");
    let server = TestServer::with_config(std::slice::from_ref(&welcome), move |config| {
        config.database = Some(url);
        config.cluster = Some(settings);
        must(
            std::fs::write(config.plugins_dir.join("welcome_bot.toml"), WELCOME_V2),
            "write the manifest",
        );
    })
    .await;
    eventually("the node runs the published plugin", || async {
        greeting(&server).filter(|g| g == "Hello {name}, from the default")
    })
    .await;

    let path = "/v1/admin/plugins/welcome_bot/settings";
    let (status, answer) = server
        .call(
            Method::PATCH,
            path,
            Some(ADMIN_KEY),
            Some(json!({"greeting": "Cluster hi, {name}"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["reload"], Value::Null, "{answer}");
    eventually("the node applies the setting", || async {
        greeting(&server).filter(|g| g == "Cluster hi, {name}")
    })
    .await;
    let alice = server.user("alice").await;
    assert_eq!(
        greeting_for(&server, &alice, "bob").await,
        "Cluster hi, BOB"
    );

    let disable = "/v1/admin/plugins/welcome_bot/disable";
    let (status, answer) = server
        .call(Method::POST, disable, Some(ADMIN_KEY), None)
        .await;
    assert_eq!(
        (status, &answer["enabled"]),
        (StatusCode::OK, &json!(false)),
        "{answer}"
    );
    eventually("the node turns it off", || async {
        plugin(&server, "welcome_bot")
            .await
            .filter(|p| p["state"] == "off")
    })
    .await;
    let enable = "/v1/admin/plugins/welcome_bot/enable";
    let (status, _) = server
        .call(Method::POST, enable, Some(ADMIN_KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually("the node runs it again, with its setting", || async {
        greeting(&server).filter(|g| g == "Cluster hi, {name}")
    })
    .await;

    // Uploads: a bad one is refused before it reaches the catalog; a good one reaches the node.
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let upload = "/v1/admin/plugins/counter";
    let (status, answer) = server
        .call(
            Method::PUT,
            upload,
            Some(ADMIN_KEY),
            Some(json!({"wasm": encode(b"junk")})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let only_sent = must(std::fs::read(chathooks_tests::fixture("only_sent")), "read");
    let (status, answer) = server
        .call(
            Method::PUT,
            upload,
            Some(ADMIN_KEY),
            Some(json!({"wasm": encode(&only_sent)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    eventually("the node loads the uploaded plugin", || async {
        server.running.state.chat.registry().get("counter")
    })
    .await;
    server.stop().await;
}
