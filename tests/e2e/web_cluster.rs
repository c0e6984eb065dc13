//! The web pages against a cluster (PostgreSQL and NATS, two nodes in this process): two people on two
//! different nodes chat through the profanity filter in two Chromium sessions, and the console of one
//! node lists both nodes. Skips without PostgreSQL, NATS or Chromium (CI requires all three).

use chathooks::config::ClusterSettings;
use chathooks_testservers::{Nats, Postgres};

use crate::sandbox_support::{eventually, plugin};
use crate::server_support::{ADMIN_KEY, TestServer, must};
use crate::web_support::{Browser, ENTER};

/// Node `node_id` of cluster `web-e2e` on `database` and `nats`, with the profanity filter.
async fn node(database: &str, nats: &Nats, node_id: &str) -> TestServer {
    let settings = ClusterSettings {
        nats: vec![nats.url()],
        node_id: node_id.to_owned(),
        name: "web-e2e".to_owned(),
    };
    let database = database.to_owned();
    TestServer::with_config(
        &[chathooks_tests::example("profanity_filter")],
        move |config| {
            config.database = Some(database);
            config.cluster = Some(settings);
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_across_the_nodes_of_a_cluster() {
    let Some(pg) = Postgres::shared() else {
        return;
    };
    let Some(nats) = Nats::start_or_skip() else {
        return;
    };
    let Some(alice_window) = Browser::start().await else {
        return;
    };
    let Some(bob_window) = Browser::start().await else {
        return;
    };
    let url = must(pg.url_for_new_database(), "a database");
    let n1 = node(&url, &nats, "n1").await;
    let n2 = node(&url, &nats, "n2").await;
    for server in [&n1, &n2] {
        eventually("each node runs the filter", || async {
            plugin(server, "profanity_filter")
                .await
                .filter(|p| p["state"] == "active")
        })
        .await;
    }
    let alice = n1.user("alice").await;
    let bob = n1.user("bob").await;
    let conv = n1.conversation(&alice, &["bob"]).await;

    alice_window
        .goto(&format!("{}/chat#token={alice}", n1.base))
        .await;
    bob_window
        .goto(&format!("{}/chat#token={bob}", n2.base))
        .await;
    for window in [&alice_window, &bob_window] {
        window
            .click(&format!("[data-conversation-id=\"{conv}\"]"))
            .await;
        window
            .attr("#connection[data-state=\"online\"]", "id")
            .await;
    }
    alice_window
        .type_into(
            "#composer-input",
            &format!("what the HECK, across nodes{ENTER}"),
        )
        .await;
    bob_window
        .wait_text(".message-body", "what the ****, across nodes")
        .await;

    // The console of the second node shows the cluster, both nodes alive.
    bob_window
        .goto(&format!("{}/console#cluster", n2.base))
        .await;
    bob_window.type_into("#admin-key", ADMIN_KEY).await;
    bob_window.click("#signin-button").await;
    bob_window.wait_text("#node", "node n2").await;
    bob_window.click("#cluster-tab").await;
    bob_window.wait_text("#node-rows", "n1").await;
    bob_window.wait_text("#node-rows", "n2 (this node)").await;
    bob_window.screenshot("console-cluster").await;

    alice_window.quit().await;
    bob_window.quit().await;
    n2.stop().await;
    n1.stop().await;
}
