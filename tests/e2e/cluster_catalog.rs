//! A cluster node's plugins come from the cluster's catalog: a node started with a plugins folder
//! publishes it, loads it from the catalog, reports it in its heartbeat, and `GET /v1/admin/cluster` shows
//! the rollout; a `chathooks plugins push` with `--nats` reaches the node at once. (The 3-node cases are
//! in `tests/cluster`.)

use chathooks::cli::{CatalogArgs, PluginsCommand};
use chathooks::config::ClusterSettings;
use chathooks_testservers::{Nats, Postgres};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::sandbox_support::eventually;
use crate::server_support::{ADMIN_KEY, TestServer, must};

fn sha256(path: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(must(
        std::fs::read(path),
        "read the plugin",
    )))
}

async fn cluster_view(server: &TestServer) -> Value {
    let (status, body) = server
        .call(Method::GET, "/v1/admin/cluster", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_node_runs_its_folder_from_the_catalog_and_takes_a_push_at_once() {
    let Some(pg) = Postgres::shared() else {
        return;
    };
    let Some(nats) = Nats::start_or_skip() else {
        return;
    };
    let url = must(pg.url_for_new_database(), "a database");
    let v1 = chathooks_tests::fixture("only_sent");
    let settings = ClusterSettings {
        nats: vec![nats.url()],
        node_id: "n1".to_owned(),
        name: "catalog-e2e".to_owned(),
    };
    let database = url.clone();
    let server = TestServer::with_config(std::slice::from_ref(&v1), move |config| {
        config.database = Some(database);
        config.cluster = Some(settings);
    })
    .await;
    let name = v1
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let summary = |view: &Value| {
        view["plugins"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == name.as_str()))
            .and_then(|p| p["summary"].as_str().map(str::to_owned))
    };
    let short = |hash: String| hash[..12].to_owned();
    let want = format!("1/1 nodes on {}", short(sha256(&v1)));
    let view = eventually("the node reports the published plugin", || async {
        let view = cluster_view(&server).await;
        (summary(&view).as_deref() == Some(want.as_str())).then_some(view)
    })
    .await;
    assert_eq!(
        (view["cluster"].as_str(), view["node_id"].as_str()),
        (Some("catalog-e2e"), Some("n1"))
    );
    assert_eq!(view["nodes"][0]["alive"], true);
    // The only node becomes the sequencer, and says so in its metrics too.
    eventually("the node holds the sequencer role", || async {
        let response = server
            .http
            .request(Method::GET, format!("{}/metrics", server.base))
            .send()
            .await
            .ok()?;
        let text = response.text().await.ok()?;
        text.contains("chathooks_cluster_sequencer{node=\"n1\"} 1")
            .then_some(())
    })
    .await;

    // A new version pushed by the CLI, with NATS: the node loads it at once.
    let dir = chathooks_tests::temp_dir();
    let v2 = dir.path().join(format!("{name}.wasm"));
    must(
        std::fs::copy(chathooks_tests::fixture("recorder"), &v2),
        "copy v2",
    );
    let command = PluginsCommand::Push {
        path: v2.clone(),
        catalog: CatalogArgs {
            database: url,
            cluster_name: Some("catalog-e2e".to_owned()),
            nats: vec![nats.url()],
        },
    };
    let pushed = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        chathooks::cli::plugins(&command, &mut out)
            .map(|_| String::from_utf8_lossy(&out).into_owned())
    })
    .await;
    let out = must(must(pushed, "push task"), "push v2");
    assert!(out.contains(": updated in cluster catalog-e2e"), "{out}");
    let want = format!("1/1 nodes on {}", short(sha256(&v2)));
    eventually("the node reports the pushed version", || async {
        let view = cluster_view(&server).await;
        (summary(&view).as_deref() == Some(want.as_str())).then_some(())
    })
    .await;
    server.stop().await;
}
