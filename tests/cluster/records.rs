//! What plugins left behind, read from outside: their KV rows in PostgreSQL and their log lines on each
//! node's output. The recorder fixture writes `after-message-sent:<event-id>` with the call's context and
//! message, and logs `recorder: after-message-sent:<event-id>` on the node that ran the call.

use serde_json::Value;

use crate::cluster::Cluster;

/// One after-message-sent call of the recorder, from a node's log.
#[derive(Debug, Clone)]
pub struct HookCall {
    /// The node whose log has the line.
    pub node: String,
    /// The log line's timestamp (RFC 3339, UTC: sorts as text), to order calls across nodes.
    pub at: String,
    /// The event id the call was for.
    pub event_id: i64,
}

/// What the recorder stored for one event (the last attempt's record).
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The event id.
    pub event_id: i64,
    /// The attempt number the last call had.
    pub attempt: i64,
    /// The message's conversation.
    pub conversation_id: String,
    /// The message's position in its conversation.
    pub seq: i64,
    /// The message id.
    pub message_id: String,
}

/// Every `recorder: after-message-sent:<id>` line on every node, in each node's order.
pub fn recorder_calls(cluster: &Cluster) -> Vec<HookCall> {
    const NEEDLE: &str = "recorder: after-message-sent:";
    let mut calls = Vec::new();
    for node in &cluster.nodes {
        for line in node.lines_with(NEEDLE) {
            let Some((_, rest)) = line.split_once(NEEDLE) else {
                continue;
            };
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let Ok(event_id) = digits.parse() else {
                continue;
            };
            let at = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            calls.push(HookCall {
                node: node.id.clone(),
                at,
                event_id,
            });
        }
    }
    calls
}

/// The recorder's `after-message-sent:*` records, from its KV rows in the database.
pub fn recorder_kv(cluster: &Cluster) -> Vec<Recorded> {
    let out = cluster.sql(
        "SELECT convert_from(value, 'UTF8') FROM plugin_kv WHERE plugin = 'recorder' \
         AND convert_from(key, 'UTF8') LIKE 'after-message-sent:%'",
    );
    out.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a recorder record is not JSON ({e}): {line}"));
            let number = |v: &Value| v.as_i64().unwrap_or(-1);
            Recorded {
                event_id: number(&value["context"]["event_id"]),
                attempt: number(&value["context"]["attempt"]),
                conversation_id: value["message"]["conversation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                seq: number(&value["message"]["seq"]),
                message_id: value["message"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            }
        })
        .collect()
}

/// Plugin `plugin`'s KV value under `key` as text, from the database.
pub fn kv_text(cluster: &Cluster, plugin: &str, key: &str) -> Option<String> {
    let out = cluster.sql(&format!(
        "SELECT convert_from(value, 'UTF8') FROM plugin_kv WHERE plugin = '{plugin}' \
         AND key = convert_to('{key}', 'UTF8')"
    ));
    let text = out.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// How many nodes have a log line containing `needle`.
pub fn nodes_logging(cluster: &Cluster, needle: &str) -> Vec<String> {
    cluster
        .nodes
        .iter()
        .filter(|node| !node.lines_with(needle).is_empty())
        .map(|node| node.id.clone())
        .collect()
}
