//! PostgreSQL going away under the cluster (SCALE-OUT.md 2.10 case 10): while it is down every node
//! answers 503, once it is back the same nodes serve again without a restart, nothing they acknowledged
//! is lost and every client still gets every acknowledged message once.

use reqwest::StatusCode;

use crate::api;
use crate::cluster::{Cluster, ClusterOptions};
use crate::live::assert_got_each_once;
use crate::wait::{eventually, must};
use crate::ws::Collector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case10_postgresql_down_means_503_then_recovery_without_losing_an_acknowledged_write() {
    let options = ClusterOptions {
        own_postgres: true,
        ..ClusterOptions::three()
    };
    let Some(mut cluster) = Cluster::start(options).await else {
        return;
    };
    let (conv, users) = api::three_users_one_conversation(&cluster.nodes).await;
    let mut clients = Vec::new();
    for (k, (id, token)) in users.iter().enumerate() {
        clients.push(Collector::connect(&cluster.nodes[k], id, token, None).await);
    }
    let mut acked = Vec::new();
    for i in 0..20 {
        let k = i % 3;
        let body = format!("before {i}");
        let message = api::send(&cluster.nodes[k], &users[k].1, &conv, &body).await;
        acked.push(api::str_field(&message, "id"));
    }

    must(cluster.own_postgres().pause(), "stop PostgreSQL");
    for (k, node) in cluster.nodes.iter().enumerate() {
        let answer = api::try_send(node, &users[k].1, &conv, "while down", None).await;
        let (status, body) = answer.unwrap_or_else(|e| panic!("{} did not answer: {e}", node.id));
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}: {body}",
            node.id
        );
        assert_eq!(body["error"]["code"], "unavailable", "{}: {body}", node.id);
        assert_eq!(api::healthz(node).await, Some(503), "{} /healthz", node.id);
    }

    must(cluster.own_postgres().resume(), "start PostgreSQL again");
    for node in &cluster.nodes {
        eventually(&format!("{} serves again", node.id), || async {
            (api::healthz(node).await == Some(200)).then_some(())
        })
        .await;
    }
    for i in 0..20 {
        let k = i % 3;
        let message = api::send_acked(
            &cluster.nodes[k],
            &users[k].1,
            &conv,
            &format!("after {i}"),
            &format!("after-{i}"),
        )
        .await;
        acked.push(api::str_field(&message, "id"));
    }

    let listed = api::messages(cluster.node(3), &users[2].1, &conv, 100).await;
    let mut stored: Vec<String> = listed
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    stored.reverse();
    assert_eq!(stored, acked, "exactly the acknowledged messages, in order");
    for client in &clients {
        client.wait_messages(acked.len()).await;
        assert_got_each_once(client, &acked);
    }
}
