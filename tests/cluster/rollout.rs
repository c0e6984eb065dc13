//! A plugin rollout (SCALE-OUT.md 2.10 case 8): `chathooks plugins push` puts a new version in the
//! cluster's catalog, and every node runs it within seconds, reports it in `GET /v1/admin/cluster`, and
//! behaves alike for a request it serves.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::api;
use crate::cluster::{Cluster, ClusterOptions, Plugin};
use crate::wait::{eventually, eventually_within, must};

/// How soon every node runs a pushed version.
const ROLLOUT_WITHIN: Duration = Duration::from_secs(5);

/// The SHA-256 of a file, in hex.
fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(must(
        std::fs::read(path),
        "read a plugin",
    )))
}

/// The SHA-256 of plugin `name` that node `node_id` reports in `view`.
fn reported<'v>(view: &'v Value, node_id: &str, name: &str) -> Option<&'v str> {
    view["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["node_id"] == node_id)?["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?["sha256"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case8_a_pushed_version_runs_on_every_node_within_seconds() {
    let v1 = Plugin::fixture("only_sent");
    let name = v1.name();
    let Some(cluster) = Cluster::start(ClusterOptions::three().with_plugins(vec![v1])).await else {
        return;
    };
    // v2: another component under the same name (the recorder, whose before-hook logs each draft).
    let dir = chathooks_tests::temp_dir();
    let v2 = dir.path().join(format!("{name}.wasm"));
    must(
        std::fs::copy(chathooks_tests::fixture("recorder"), &v2),
        "copy v2",
    );
    let want = sha256(&v2);
    let asker = cluster.node(1);
    let before = eventually("n1 reports v1", || async {
        let view = api::cluster_view(asker).await?;
        reported(&view, "n1", &name).map(str::to_owned)
    })
    .await;
    assert_ne!(before, want, "v1 and v2 differ");

    let output = must(
        Command::new(env!("CARGO_BIN_EXE_chathooks"))
            .args(["plugins", "push"])
            .arg(&v2)
            .args(["--database", &cluster.database_url])
            .args(["--cluster-name", &cluster.name])
            .args(["--nats", &cluster.nats.url()])
            .output(),
        "run chathooks plugins push",
    );
    assert!(
        output.status.success(),
        "chathooks plugins push failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eventually_within("every node reports v2", ROLLOUT_WITHIN, || async {
        let view = api::cluster_view(asker).await?;
        cluster
            .nodes
            .iter()
            .all(|n| reported(&view, &n.id, &name) == Some(want.as_str()))
            .then_some(())
    })
    .await;

    // Each node's before-hook is v2's: it logs the draft on the node that served the send.
    let alice = api::user(asker, "alice").await;
    let conv = api::conversation(asker, &alice, &[]).await;
    for node in &cluster.nodes {
        let body = format!("rollout probe {}", node.id);
        api::send(node, &alice, &conv, &body).await;
        let line = format!("recorder: before-message-sent:{body}");
        assert_eq!(
            node.lines_with(&line).len(),
            1,
            "{} did not run v2's before-hook:\n{}",
            node.id,
            node.tail(20)
        );
    }
}
