//! The harness itself: three nodes start on one database and one NATS, each answers `/healthz`, a user
//! created on n1 works on n3, and a message sent on n1 is listed on n2.

use crate::api;
use crate::cluster::{Cluster, ClusterOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_database() {
    let Some(cluster) = Cluster::start(ClusterOptions::three()).await else {
        return;
    };
    for node in &cluster.nodes {
        assert_eq!(api::healthz(node).await, Some(200), "{}", node.id);
    }
    let (n1, n2, n3) = (cluster.node(1), cluster.node(2), cluster.node(3));
    let alice = api::user(n1, "alice").await;
    api::user(n1, "bob").await;
    let me = api::get_ok(n3, "/v1/me", &alice).await;
    assert_eq!(me["id"], "alice", "{me}");

    let conv = api::conversation(n1, &alice, &["bob"]).await;
    let sent = api::send(n1, &alice, &conv, "hello from n1").await;
    let listed = api::messages(n2, &alice, &conv, 10).await;
    let ids: Vec<&str> = listed.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, [sent["id"].as_str().unwrap_or("?")], "{listed:?}");
}
