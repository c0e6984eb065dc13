//! Presence and the events of WIT 0.3.0 across nodes: a user's connections on several nodes count as
//! one presence, their contacts on other nodes hear them come online once and go offline once (after the
//! last connection anywhere closed), and the all-read event reaches the sender on another node. A node
//! that dies takes its users offline within seconds (a survivor sweeps its rows once its heartbeat is
//! stale), and a node whose rows were swept while it lived puts them back.

use std::time::Duration;

use serde_json::{Value, json};

use crate::api;
use crate::cluster::{Cluster, ClusterOptions, PRESENCE_GRACE_MS};
use crate::ws::Collector;

/// The presence changes about `user` that `client` has seen, as `online` flags, in order.
fn flips(client: &Collector, user: &str) -> Vec<bool> {
    client
        .of_kind("user.presence.changed")
        .iter()
        .filter(|e| e["payload"]["user"]["id"] == user)
        .filter_map(|e| e["payload"]["presence"]["online"].as_bool())
        .collect()
}

async fn wait_flips(client: &Collector, user: &str, want: &[bool]) {
    crate::wait::eventually(
        &format!("{} sees {user} go {want:?}", client.label),
        || async { (flips(client, user) == want).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_nodes_and_flips_once_each_way() {
    let Some(cluster) = Cluster::start(ClusterOptions::three()).await else {
        return;
    };
    let (conv, users) = api::three_users_one_conversation(&cluster.nodes).await;
    let (u1, u2) = (&users[0], &users[1]);
    let watcher = Collector::connect(&cluster.nodes[1], "u2", &u2.1, None).await;

    let on_n1 = Collector::connect(&cluster.nodes[0], "u1", &u1.1, None).await;
    wait_flips(&watcher, "u1", &[true]).await;
    let on_n3 = Collector::connect(&cluster.nodes[2], "u1", &u1.1, None).await;
    drop(on_n1);
    // Three grace periods after the n1 connection closed, u1 is still online: n3 holds a connection.
    tokio::time::sleep(Duration::from_millis(3 * PRESENCE_GRACE_MS)).await;
    let now = api::get_ok(&cluster.nodes[1], "/v1/users/u1/presence", &u2.1).await;
    assert_eq!(now["online"], true, "{now}");
    assert_eq!(flips(&watcher, "u1"), [true]);
    drop(on_n3);
    wait_flips(&watcher, "u1", &[true, false]).await;

    // All read across nodes: u1 (on n1) hears that u2 and u3, on n2 and n3, read its message.
    let sender = Collector::connect(&cluster.nodes[0], "u1", &u1.1, None).await;
    let sent = api::send(&cluster.nodes[0], &u1.1, &conv, "read me").await;
    let id = api::str_field(&sent, "id");
    for (k, (_, token)) in users.iter().enumerate().skip(1) {
        api::post_ok(
            &cluster.nodes[k],
            &format!("/v1/conversations/{conv}/read"),
            token,
            json!({"message_id": id}),
        )
        .await;
    }
    let all: Value = sender.wait_kind("message.read_by_all").await;
    assert_eq!(all["payload"]["message"]["id"], json!(id));
    assert_eq!(sender.of_kind("message.read_by_all").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_users_go_offline_and_a_swept_node_restores_its_own() {
    let Some(mut cluster) = Cluster::start(ClusterOptions::three()).await else {
        return;
    };
    let (_conv, users) = api::three_users_one_conversation(&cluster.nodes).await;
    let (u1, u2, u3) = (&users[0], &users[1], &users[2]);
    let watcher = Collector::connect(&cluster.nodes[1], "u2", &u2.1, None).await;
    let _u1_on_n1 = Collector::connect(&cluster.nodes[0], "u1", &u1.1, None).await;
    let _u3_on_n3 = Collector::connect(&cluster.nodes[2], "u3", &u3.1, None).await;
    wait_flips(&watcher, "u1", &[true]).await;
    wait_flips(&watcher, "u3", &[true]).await;

    // n3 dies and never comes back: its socket to u3 is gone with it, so u3 goes offline once the
    // survivors see n3's heartbeat go stale, rather than never.
    cluster.node_mut(3).kill();
    wait_flips(&watcher, "u3", &[true, false]).await;
    let u3_now = api::get_ok(&cluster.nodes[1], "/v1/users/u3/presence", &u2.1).await;
    assert_eq!(u3_now["online"], false, "{u3_now}");
    assert_eq!(
        cluster
            .sql("SELECT count(*) FROM presence WHERE node = 'n3'")
            .trim(),
        "0"
    );

    // n1's rows vanish while n1 lives (as a sweep would leave them had n1's heartbeat been unheard):
    // n1 still holds u1's socket, so within a sweep u1 is online again.
    cluster.sql("DELETE FROM presence WHERE node = 'n1'");
    crate::wait::eventually("n1 puts its presence row for u1 back", || async {
        (cluster
            .sql("SELECT user_id FROM presence WHERE node = 'n1'")
            .trim()
            == "u1")
            .then_some(())
    })
    .await;
    let u1_now = api::get_ok(&cluster.nodes[1], "/v1/users/u1/presence", &u2.1).await;
    assert_eq!(u1_now["online"], true, "{u1_now}");
    // Putting the row back is announced as any flip online is (after a real sweep, contacts were
    // told u1 went offline).
    wait_flips(&watcher, "u1", &[true, true]).await;
}
