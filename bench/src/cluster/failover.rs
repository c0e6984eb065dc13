//! Section 6c: the sequencer killed. Three nodes without plugins; bob watches over WebSocket on a node
//! that is not the sequencer, alice posts to their conversation through the third node. The sequencer
//! node (found from its log line) is SIGKILLed, and from that instant alice posts every 50 ms through her
//! surviving node. Measured: when a surviving node's log says it took the role, and when bob received a
//! message live again; checked: every message whose POST was answered reached bob exactly once, and the
//! event ids bob saw are strictly increasing and gapless (SCALE-OUT.md 2.4: ids are positions given by
//! one sequencer at a time). The killed node is started again (same node id) before the next round, whose
//! victim is whichever node then holds the role.

use super::nodes::{Nodes, Topology};
use super::{Infra, Options, machine_note};
use crate::guests::RustGuests;
use crate::report::Section;
use crate::server::Api;
use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How often alice posts after the kill.
const SEND_EVERY: Duration = Duration::from_millis(50);

/// How long alice keeps posting once bob receives live again (messages sequenced by the new holder).
const SEND_AFTER_RECOVERY: Duration = Duration::from_secs(1);

/// How long to wait for the cluster to deliver again before the round counts as failed.
const RECOVERY_PATIENCE: Duration = Duration::from_secs(20);

/// How long to wait, after the last POST, for its message to reach bob.
const ARRIVAL_PATIENCE: Duration = Duration::from_secs(5);

/// A WebSocket frame bob received.
#[derive(Debug)]
struct Frame {
    /// The event id (0 for live-only events).
    id: u64,
    /// The message's body, for `message.new`.
    body: Option<String>,
    /// When it arrived.
    at: Instant,
}

/// One round: a kill and what bob saw after it.
struct Round {
    /// The killed node and the node that took the role.
    killed: String,
    successor: Option<String>,
    /// From the kill until a surviving node's log said it holds the role (polled every 50 ms).
    role_taken: Option<Duration>,
    /// From the kill until bob received a message again.
    live_again: Option<Duration>,
    /// The longest any answered message took from its POST to bob.
    longest_wait: Option<Duration>,
    /// POSTs made after the kill, and how many were answered with success.
    posted: usize,
    answered: usize,
    /// Answered messages bob never received, and those he received more than once.
    missing: usize,
    duplicated: usize,
    /// Event ids bob saw in this round, in arrival order: `None` if strictly increasing by one, else the
    /// first pair that was not.
    first_break: Option<(u64, u64)>,
    /// How many stored events (id > 0) bob saw in this round.
    events: usize,
}

/// Section 6c.
pub fn run(infra: &Infra, guests: &RustGuests, options: &Options) -> anyhow::Result<Section> {
    eprintln!(
        "  6c: the sequencer killed, {} time(s), 3 nodes",
        options.failovers
    );
    let mut nodes = Nodes::start(infra, guests, Topology::Cluster { nodes: 3 }, 0)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let api = Api::new(&nodes.nodes[0].base)?;
    let (alice, bob, conversation) = rt.block_on(async {
        let alice = api.user("alice").await?;
        let bob = api.user("bob").await?;
        let conversation = api.conversation(&alice, &["bob".to_owned()]).await?;
        Ok::<_, anyhow::Error>((alice, bob, conversation))
    })?;
    let mut rounds = Vec::new();
    for round in 1..=options.failovers {
        let seq = nodes.sequencer(Duration::from_secs(15))?;
        let watcher = (seq + 1) % 3;
        let sender = (seq + 2) % 3;
        let people = People {
            alice: &alice,
            bob: &bob,
            conversation: &conversation,
        };
        let r = rt.block_on(one_round(&mut nodes, round, seq, watcher, sender, &people))?;
        eprintln!(
            "    round {round}: killed {}, role taken {}, live again {}, {} of {} answered, {} missing, {} \
             duplicated, ids {}",
            r.killed,
            opt_ms(r.role_taken),
            opt_ms(r.live_again),
            r.answered,
            r.posted,
            r.missing,
            r.duplicated,
            r.first_break
                .map_or_else(|| "gapless".to_owned(), |(a, b)| format!("{a} then {b}"))
        );
        rounds.push(r);
        nodes.restart(seq)?;
    }
    Ok(table(infra, &rounds))
}

/// Who talks in the fail-over rounds.
struct People<'a> {
    alice: &'a str,
    bob: &'a str,
    conversation: &'a str,
}

/// One kill: bob on `watcher`, alice posting to `sender`, node `seq` killed.
async fn one_round(
    nodes: &mut Nodes,
    round: usize,
    seq: usize,
    watcher: usize,
    sender: usize,
    people: &People<'_>,
) -> anyhow::Result<Round> {
    let ws = format!(
        "{}/v1/ws?token={}",
        nodes.nodes[watcher].base.replacen("http://", "ws://", 1),
        people.bob
    );
    let (socket, _) = tokio_tungstenite::connect_async(ws.as_str())
        .await
        .context("bob's WebSocket")?;
    let (_, mut read) = socket.split();
    let (tx, mut frames) = mpsc::unbounded_channel::<Frame>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = read.next().await {
            if let WsMessage::Text(text) = frame
                && let Ok(event) = serde_json::from_str::<Value>(&text)
            {
                let frame = Frame {
                    id: event["id"].as_u64().unwrap_or(0),
                    body: event["payload"]["message"]["body"]
                        .as_str()
                        .map(str::to_owned),
                    at: Instant::now(),
                };
                if tx.send(frame).is_err() {
                    break;
                }
            }
        }
    });
    let api = Api::new(&nodes.nodes[sender].base)?;
    let path = format!("/v1/conversations/{}/messages", people.conversation);
    // Before the kill: one message through the same path, received, so nothing is in flight.
    let warm = format!("failover {round} before");
    api.post(&path, people.alice, &json!({ "body": warm }))
        .await?;
    let mut seen: Vec<Frame> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen
        .iter()
        .any(|f| f.body.as_deref() == Some(warm.as_str()))
    {
        let frame = tokio::time::timeout_at(deadline.into(), frames.recv())
            .await
            .context("the message before the kill did not reach bob")?
            .context("bob's WebSocket closed")?;
        seen.push(frame);
    }

    // The survivors try for the role once a second, all at the same moment of the second when they
    // started together: a kill at a fixed time after the set-up would always land at the same point of
    // their cycle. A pseudo-random pause spreads the kills over it.
    tokio::time::sleep(pause_before_kill()).await;
    let claims = nodes.claims();
    if claims.len() != 1 {
        eprintln!(
            "    round {round}: before the kill, the logs of {claims:?} say they hold the role"
        );
    }
    let killed = nodes.nodes[seq].id.clone();
    let killed_at = Instant::now();
    nodes.kill(seq)?;
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<(usize, bool)>();
    let mut after: Vec<Frame> = Vec::new();
    let (mut posted, mut answered, mut failed) = (0usize, Vec::new(), 0usize);
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut role_taken = None;
    let mut live_again: Option<Instant> = None;
    let mut tick = tokio::time::interval(SEND_EVERY);
    loop {
        let now = Instant::now();
        let sending = live_again.is_none_or(|at| now < at + SEND_AFTER_RECOVERY)
            && now < killed_at + RECOVERY_PATIENCE;
        if !sending && answered.len() + failed >= posted {
            break;
        }
        tokio::select! {
            _ = tick.tick(), if sending => {
                let (api, path, alice, tx) = (api.clone(), path.clone(), people.alice.to_owned(), answers_tx.clone());
                let k = posted;
                posted += 1;
                sent_at.push(Instant::now());
                tokio::spawn(async move {
                    let body = json!({ "body": format!("failover {round} after {k}") });
                    let ok = api.post(&path, &alice, &body).await.is_ok();
                    let _ = tx.send((k, ok));
                });
                if role_taken.is_none() && nodes.sequencer_now().is_some() {
                    role_taken = Some(killed_at.elapsed());
                }
            }
            Some((k, ok)) = answers.recv() => {
                if ok {
                    answered.push(k);
                } else {
                    failed += 1;
                }
            }
            Some(frame) = frames.recv() => {
                live_again.get_or_insert(frame.at);
                after.push(frame);
            }
            _ = tokio::time::sleep(Duration::from_millis(200)), if !sending => {}
        }
    }
    // Every answered message should now reach bob.
    let quiet_until = Instant::now() + ARRIVAL_PATIENCE;
    while after.iter().filter(|f| f.body.is_some()).count() < answered.len() {
        match tokio::time::timeout_at(quiet_until.into(), frames.recv()).await {
            Ok(Some(frame)) => after.push(frame),
            _ => break,
        }
    }
    // A little longer, for a duplicate that would follow.
    while let Ok(Some(frame)) =
        tokio::time::timeout(Duration::from_millis(300), frames.recv()).await
    {
        after.push(frame);
    }
    reader.abort();
    let successor = nodes.sequencer_now().map(|i| nodes.nodes[i].id.clone());
    let observed = Observed {
        posted,
        sent_at,
        answered,
        before: seen,
        after,
    };
    Ok(Round {
        killed,
        successor,
        role_taken,
        live_again: live_again.map(|at| at - killed_at),
        ..check(round, &observed)
    })
}

/// A pause of 0 to 1 s, different each round (the clock's nanoseconds).
fn pause_before_kill() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(u64::from(nanos / 1_000_000))
}

/// What alice sent and bob saw in a round.
struct Observed {
    /// POSTs made after the kill.
    posted: usize,
    /// When each was made.
    sent_at: Vec<Instant>,
    /// Those answered with success, by their number.
    answered: Vec<usize>,
    /// Bob's frames up to the message before the kill.
    before: Vec<Frame>,
    /// Bob's frames since the kill.
    after: Vec<Frame>,
}

/// The round's checks over what bob saw (the timings are left for the caller to fill in).
fn check(round: usize, observed: &Observed) -> Round {
    let Observed {
        posted,
        sent_at,
        answered,
        before,
        after,
    } = observed;
    let mut received: BTreeMap<usize, usize> = BTreeMap::new();
    let mut longest_wait: Option<Duration> = None;
    let prefix = format!("failover {round} after ");
    for f in after {
        if let Some(k) = f
            .body
            .as_deref()
            .and_then(|b| b.strip_prefix(&prefix))
            .and_then(|k| k.parse::<usize>().ok())
        {
            *received.entry(k).or_default() += 1;
            if let Some(&sent) = sent_at.get(k) {
                let waited = f.at.saturating_duration_since(sent);
                longest_wait = Some(longest_wait.map_or(waited, |w| w.max(waited)));
            }
        }
    }
    let missing = answered
        .iter()
        .filter(|&&k| !received.contains_key(&k))
        .count();
    let duplicated = received.values().filter(|&&n| n > 1).count();
    let ids: Vec<u64> = before
        .iter()
        .chain(after)
        .map(|f| f.id)
        .filter(|&id| id > 0)
        .collect();
    let first_break = ids
        .windows(2)
        .find(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1]));
    Round {
        killed: String::new(),
        successor: None,
        role_taken: None,
        live_again: None,
        longest_wait,
        posted: *posted,
        answered: answered.len(),
        missing,
        duplicated,
        first_break,
        events: ids.len(),
    }
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "never".to_owned(),
        |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0),
    )
}

fn table(infra: &Infra, rounds: &[Round]) -> Section {
    let mut s = Section::new(
        "6c. Cluster: the sequencer killed",
        &[
            "round",
            "killed",
            "new sequencer",
            "role taken after",
            "live again after",
            "longest wait of a message",
            "POSTs after the kill (answered)",
            "missing",
            "duplicated",
            "event ids bob saw",
        ],
    );
    s.intro.push(format!(
        "3 nodes, no plugins. bob is connected over WebSocket to a node that is not the sequencer; alice \
         posts to their conversation through the third node, once before the kill (received, so nothing is \
         in flight), a pause of 0-1 s (so that the kills land at different points of the survivors' \
         once-a-second try for the role), then every {} ms from the instant the sequencer node (the one whose log says `this node \
         is the cluster's sequencer`) is SIGKILLed until {} s after bob receives again. \"role taken\": \
         when a surviving node's log said so (polled every {} ms); \"live again\": the first message bob \
         received after the kill; \"longest wait\": the most any message sent after the kill took from its \
         POST to bob. missing/duplicated: answered POSTs whose message bob received 0 or \
         more than 1 times. The killed node is restarted before the next round. {}",
        SEND_EVERY.as_millis(),
        SEND_AFTER_RECOVERY.as_secs(),
        SEND_EVERY.as_millis(),
        machine_note(infra)
    ));
    for (i, r) in rounds.iter().enumerate() {
        s.row(vec![
            (i + 1).to_string(),
            r.killed.clone(),
            r.successor.clone().unwrap_or_else(|| "none".to_owned()),
            opt_ms(r.role_taken),
            opt_ms(r.live_again),
            opt_ms(r.longest_wait),
            format!("{} ({})", r.posted, r.answered),
            r.missing.to_string(),
            r.duplicated.to_string(),
            match r.first_break {
                None => format!("{}, strictly increasing, gapless", r.events),
                Some((a, b)) => format!("{}, **{a} then {b}**", r.events),
            },
        ]);
    }
    s
}
