//! After-hooks in a cluster (SCALE-OUT.md 2.10 cases 3, 4 and 7): each event is hooked once, in
//! conversation order, by whichever node leases it; a node killed mid-delivery loses nothing (its leased
//! deliveries run again elsewhere once their leases expire, with attempt 2); one idempotent send through three nodes is one
//! message, one event and one hook call.

use chathooks::store::postgres::db::DELIVERY_LEASE;
use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::future::join_all;

use crate::api;
use crate::cluster::{Cluster, ClusterOptions, LOG_FREELY, Plugin};
use crate::records::{HookCall, Recorded, recorder_calls, recorder_kv};
use crate::wait::{PATIENCE, eventually, eventually_explained, must};
use crate::ws::Collector;

/// Sends in case 3. SCALE-OUT.md asks for 1,000; that takes about ten seconds here (three debug-build
/// nodes, two cores), which is within a case's budget.
const SENDS: usize = 1000;

/// Conversations the sends of case 3 are spread over.
const CONVERSATIONS: usize = 20;

/// Rounds of the recorder's `slow:<rounds>` CPU work in case 4: roughly 100–300 ms of a call, well
/// inside the 1 s after-hook budget.
const SLOW_ROUNDS: u64 = 150_000_000;

/// A cluster of three nodes running the recorder; `None` when the servers are missing.
async fn recorder_cluster() -> Option<Cluster> {
    Cluster::start(
        ClusterOptions::three().with_plugins(vec![Plugin::fixture_with("recorder", LOG_FREELY)]),
    )
    .await
}

/// Sends `count` messages, three streams at once (`uK` through `nK`), message `i` into conversation
/// `i % convs.len()` with body `body(i)`; the sent message ids.
async fn send_spread(
    cluster: &Cluster,
    convs: &[String],
    tokens: &[String],
    count: usize,
    body: impl Fn(usize) -> String,
) -> Vec<String> {
    let body = &body;
    let streams = (0..3).map(|k| async move {
        let mut ids = Vec::new();
        for i in (k..count).step_by(3) {
            let conv = &convs[i % convs.len()];
            let message = api::send(&cluster.nodes[k], &tokens[k], conv, &body(i)).await;
            ids.push(api::str_field(&message, "id"));
        }
        ids
    });
    join_all(streams).await.into_iter().flatten().collect()
}

/// Waits (at most `within`) until the recorder has a record for each of `sent` (message ids); the records
/// by message id.
async fn records_for(
    cluster: &Cluster,
    sent: &[String],
    within: std::time::Duration,
) -> HashMap<String, Recorded> {
    let want: HashSet<&String> = sent.iter().collect();
    let what = format!("the recorder saw {} messages", sent.len());
    let explain = || cluster.tails(15);
    eventually_explained(&what, within, explain, || async {
        let records: HashMap<String, Recorded> = recorder_kv(cluster)
            .into_iter()
            .filter(|r| want.contains(&r.message_id))
            .map(|r| (r.message_id.clone(), r))
            .collect();
        (records.len() == want.len()).then_some(records)
    })
    .await
}

/// The recorder's calls for `records`' events, per conversation, in call order (log timestamps).
fn calls_by_conversation(
    calls: &[HookCall],
    records: &HashMap<String, Recorded>,
) -> BTreeMap<String, Vec<(HookCall, i64)>> {
    let by_event: HashMap<i64, &Recorded> = records.values().map(|r| (r.event_id, r)).collect();
    let mut out: BTreeMap<String, Vec<(HookCall, i64)>> = BTreeMap::new();
    for call in calls {
        if let Some(record) = by_event.get(&call.event_id) {
            out.entry(record.conversation_id.clone())
                .or_default()
                .push((call.clone(), record.seq));
        }
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| a.0.at.cmp(&b.0.at));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case3_each_event_is_hooked_once_in_conversation_order_on_several_nodes() {
    let Some(cluster) = recorder_cluster().await else {
        return;
    };
    let (convs, tokens) = api::spread_conversations(&cluster.nodes, CONVERSATIONS).await;
    let sent = send_spread(&cluster, &convs, &tokens, SENDS, |i| format!("m{i}")).await;
    let records = records_for(&cluster, &sent, PATIENCE).await;

    let attempts: Vec<&Recorded> = records.values().filter(|r| r.attempt != 1).collect();
    assert!(attempts.is_empty(), "retried: {attempts:?}");
    let events: HashSet<i64> = records.values().map(|r| r.event_id).collect();
    let calls: Vec<HookCall> = recorder_calls(&cluster)
        .into_iter()
        .filter(|c| events.contains(&c.event_id))
        .collect();
    let mut per_event: HashMap<i64, Vec<&str>> = HashMap::new();
    for call in &calls {
        per_event.entry(call.event_id).or_default().push(&call.node);
    }
    let twice: Vec<_> = per_event.iter().filter(|(_, n)| n.len() != 1).collect();
    assert!(twice.is_empty(), "hooked more than once: {twice:?}");
    assert_eq!(per_event.len(), SENDS, "every event's call is logged");

    for (conv, list) in calls_by_conversation(&calls, &records) {
        let seqs: Vec<i64> = list.iter().map(|(_, seq)| *seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "conversation {conv} hooked out of order: {seqs:?}"
        );
    }
    let nodes: HashSet<&str> = calls.iter().map(|c| c.node.as_str()).collect();
    assert!(nodes.len() >= 2, "all calls ran on {nodes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case4_a_node_killed_mid_delivery_loses_no_event_and_keeps_the_order() {
    let Some(mut cluster) = recorder_cluster().await else {
        return;
    };
    let (convs, tokens) = api::spread_conversations(&cluster.nodes, 4).await;
    let sent = send_spread(&cluster, &convs, &tokens, 40, |i| {
        format!("slow:{SLOW_ROUNDS} #{i}")
    })
    .await;
    // The first node to finish a call is delivering: it goes on with the next head of that queue at
    // once, so it holds leases (one in flight) when it dies.
    let first = eventually("a node runs a hook call", || async {
        recorder_calls(&cluster).into_iter().next()
    })
    .await;
    let victim: usize = must(first.node.trim_start_matches('n').parse(), "a node id");
    cluster.node_mut(victim).kill();

    // The killed node's leases run out first (the server's DELIVERY_LEASE), then their deliveries
    // are taken over and the rest of the slow calls run.
    let records = records_for(&cluster, &sent, PATIENCE + DELIVERY_LEASE).await;
    let calls = recorder_calls(&cluster);
    let mut count: HashMap<i64, usize> = HashMap::new();
    for call in &calls {
        *count.entry(call.event_id).or_default() += 1;
    }
    for record in records.values() {
        let n = count.get(&record.event_id).copied().unwrap_or(0);
        assert!(n >= 1, "event {} has no logged call", record.event_id);
        if n > 1 || record.attempt > 1 {
            // A repeat is a lease of n2's taken over after it expired: the next attempt.
            assert!(
                record.attempt >= 2,
                "event {} ran {n} times, the last with attempt {}",
                record.event_id,
                record.attempt
            );
        }
    }
    for (conv, list) in calls_by_conversation(&calls, &records) {
        let seqs: Vec<i64> = list.iter().map(|(_, seq)| *seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] <= w[1]),
            "conversation {conv} hooked out of order: {seqs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case7_one_client_id_sent_to_three_nodes_at_once_is_one_message_event_and_hook_call() {
    let Some(cluster) = recorder_cluster().await else {
        return;
    };
    let (conv, users) = api::three_users_one_conversation(&cluster.nodes).await;
    let mut clients = Vec::new();
    for (k, (id, token)) in users.iter().enumerate() {
        clients.push(Collector::connect(&cluster.nodes[k], id, token, None).await);
    }
    let (token, conv) = (&users[0].1, &conv);
    let sends = cluster.nodes.iter().map(|node| async move {
        let answer = api::try_send(node, token, conv, "once", Some("client-1")).await;
        let (status, message) = answer.unwrap_or_else(|e| panic!("send on {}: {e}", node.id));
        assert!(status.is_success(), "{}: {status} {message}", node.id);
        message
    });
    let answers = join_all(sends).await;
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "different answers: {answers:?}"
    );
    let id = api::str_field(&answers[0], "id");

    // A later message marks the end: once every client and the hook have it, the first is settled.
    let marker = api::send(cluster.node(1), token, conv, "marker").await;
    for client in &clients {
        client.wait_messages(2).await;
    }
    let records = records_for(
        &cluster,
        &[id.clone(), api::str_field(&marker, "id")],
        PATIENCE,
    )
    .await;
    let listed = api::messages(cluster.node(2), token, conv, 10).await;
    let bodies: Vec<&str> = listed.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, ["marker", "once"], "one message stored");
    for client in &clients {
        let news = client.message_ids();
        assert_eq!(
            news.iter().filter(|m| **m == id).count(),
            1,
            "{}: {news:?}",
            client.label
        );
    }
    let event = records[&id].event_id;
    let calls: Vec<HookCall> = recorder_calls(&cluster)
        .into_iter()
        .filter(|c| c.event_id == event)
        .collect();
    assert_eq!(calls.len(), 1, "one hook call: {calls:?}");
}
