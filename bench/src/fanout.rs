//! Section 3, fan-out: one message to a conversation whose 1,000 members are all connected over
//! WebSocket; the time from sending it until the last member has it. The members and the sender are a
//! process of their own (`chathooks-bench fanout`), so one clock times both ends.

use crate::hooks::target;
use crate::proc;
use crate::report::Section;
use crate::server::{Api, Dirs, Server, users};
use crate::stats::{Samples, fmt_ms};
use anyhow::Context;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Read buffer of each benchmark WebSocket client, in bytes.
const CLIENT_READ_BUFFER: usize = 4 * 1024;

/// What the fan-out client prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct FanoutResult {
    /// Connections that received the warm-up message (the audience of every repeat).
    pub receivers: usize,
    /// Per repeat: µs until the last member had the message.
    pub last: Vec<f64>,
    /// Per repeat: µs until the first member had it.
    pub first: Vec<f64>,
    /// Per repeat: µs until the POST answered.
    pub post: Vec<f64>,
}

/// The members' tokens and the conversation, handed to the client process.
#[derive(Debug, Serialize, Deserialize)]
pub struct Audience {
    /// Every member's token; the first one sends.
    pub tokens: Vec<String>,
    /// The conversation.
    pub conversation: String,
    /// The servers member `i` connects to, `bases[i % bases.len()]` (the nodes of a cluster); empty: the
    /// `--base` the sender posts to.
    #[serde(default)]
    pub bases: Vec<String>,
}

/// The arguments of the `fanout` subcommand.
#[derive(Debug, clap::Args)]
pub struct FanoutArgs {
    /// The server, `http://host:port`.
    #[arg(long)]
    pub base: String,
    /// JSON file with the audience.
    #[arg(long)]
    pub audience: PathBuf,
    /// Messages to time.
    #[arg(long)]
    pub repeats: usize,
}

/// Section 3.
pub fn run(members: usize, repeats: usize) -> anyhow::Result<Section> {
    eprintln!("[3] fan-out: one message to {members} members connected over WebSocket");
    let dir = tempfile::tempdir()?;
    let dirs = Dirs::under(dir.path())?;
    let server = Server::start(&dirs)?;
    let api = Api::new(&server.base)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let audience = rt.block_on(async {
        let tokens = users(&api, "member", members).await?;
        let others: Vec<String> = (1..members).map(|i| format!("member{i}")).collect();
        let conversation = api.conversation(&tokens[0], &others).await?;
        Ok::<_, anyhow::Error>(Audience {
            tokens,
            conversation,
            bases: Vec::new(),
        })
    })?;
    let result = measure(&server.base, &audience, dir.path(), repeats)?;
    let memory = server.child.resident();
    let last = Samples::from_micros(result.last);
    let first = Samples::from_micros(result.first);
    let post = Samples::from_micros(result.post);
    let mut s = Section::new(
        "3. Fan-out: one message to a conversation of 1,000 connected members",
        &[
            "members connected",
            "repeats",
            "last member p50 ms",
            "last member p99 ms",
            "first member p50 ms",
            "POST p50 ms",
        ],
    );
    s.intro.push(
        "Time from sending `POST .../messages` until the last (and the first) WebSocket client has the \
         `message.new` frame. All clients are in one process on loopback, sharing the cores with the server."
            .to_owned(),
    );
    s.row(vec![
        result.receivers.to_string(),
        last.len().to_string(),
        fmt_ms(last.p50()),
        fmt_ms(last.p99()),
        fmt_ms(first.p50()),
        fmt_ms(post.p50()),
    ]);
    if let Some(memory) = memory {
        s.note(format!(
            "server resident memory with {} WebSocket connections: {:.0} MiB (VmRSS), {:.0} MiB of it \
             private (RssAnon)",
            result.receivers,
            memory.total_kib as f64 / 1024.0,
            memory.private_kib as f64 / 1024.0
        ));
    }
    s.note(target(
        "fan-out p99 under 15 ms (shown: p99 / 15 ms)",
        last.p99() / 15_000.0,
        |r| r < 1.0,
    ));
    Ok(s)
}

/// Runs the fan-out clients (`chathooks-bench fanout`, a process of its own) for `audience`, the sender
/// posting to `base`; `dir` holds the audience file.
pub fn measure(
    base: &str,
    audience: &Audience,
    dir: &std::path::Path,
    repeats: usize,
) -> anyhow::Result<FanoutResult> {
    let file = dir.join("audience.json");
    std::fs::write(&file, serde_json::to_string(audience)?)?;
    let child = proc::Child::spawn_self(
        &[
            "fanout",
            "--base",
            base,
            "--audience",
            &file.display().to_string(),
            "--repeats",
            &repeats.to_string(),
        ],
        &[],
    )?;
    let lines = child.finish(Duration::from_secs(300))?;
    serde_json::from_str(
        lines
            .last()
            .context("the fan-out clients printed nothing")?,
    )
    .context("reading the fan-out clients' result")
}

/// `chathooks-bench fanout`: connect every member, then time `repeats` messages.
pub fn clients(args: &FanoutArgs) -> anyhow::Result<()> {
    let audience: Audience = serde_json::from_str(&std::fs::read_to_string(&args.audience)?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(time_fanout(&args.base, &audience, args.repeats))?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

async fn time_fanout(
    base: &str,
    audience: &Audience,
    repeats: usize,
) -> anyhow::Result<FanoutResult> {
    let ws_base = base.replacen("http://", "ws://", 1);
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    // Connect 50 at a time; each connection reports (repeat, arrival) for every marked message.
    let bases: Vec<String> = audience
        .bases
        .iter()
        .map(|b| b.replacen("http://", "ws://", 1))
        .collect();
    let connects: Vec<anyhow::Result<()>> = futures_util::stream::iter(audience.tokens.iter())
        .enumerate()
        .map(|(i, token)| {
            let ws_base = bases.get(i % bases.len().max(1)).unwrap_or(&ws_base);
            let url = format!("{ws_base}/v1/ws?token={token}");
            let tx = tx.clone();
            async move {
                // A 4 KiB read buffer, as the server's: a `message.new` frame of a 1,000-member
                // conversation is under 1 KB (its member list is left out). tungstenite zeroes its read
                // buffer (128 KiB by default) before every read, two per frame here; at 16 KiB that still
                // cost these 1,000 clients a tenth of their CPU, on the cores the server measured shares.
                let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
                let (socket, _) =
                    tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                        .await
                        .context("connecting a WebSocket (is `ulimit -n` above 2,100?)")?;
                let (_, mut read) = socket.split();
                tokio::spawn(async move {
                    while let Some(Ok(frame)) = read.next().await {
                        if let WsMessage::Text(text) = frame
                            && let Some(repeat) = marker(&text)
                        {
                            let _ = tx.send((repeat, Instant::now()));
                        }
                    }
                });
                Ok(())
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    connects.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let api = Api::new(base)?;
    let path = format!("/v1/conversations/{}/messages", audience.conversation);
    let sender = &audience.tokens[0];
    let patience = Duration::from_secs(10);

    // Warm-up: who receives is the audience of every repeat.
    api.post(&path, sender, &serde_json::json!({"body": "fanout-mark 0"}))
        .await?;
    let mut receivers = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some((0, _))) = tokio::time::timeout_at(deadline, rx.recv()).await {
        receivers += 1;
        if receivers == audience.tokens.len() {
            break;
        }
    }
    anyhow::ensure!(receivers > 0, "no member received the warm-up message");

    let mut result = FanoutResult {
        receivers,
        last: Vec::new(),
        first: Vec::new(),
        post: Vec::new(),
    };
    for repeat in 1..=repeats {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        api.post(
            &path,
            sender,
            &serde_json::json!({"body": format!("fanout-mark {repeat}")}),
        )
        .await?;
        result.post.push(sent.elapsed().as_secs_f64() * 1e6);
        let (mut got, mut first, mut last) = (0, None, sent);
        while got < receivers {
            let (r, at) = tokio::time::timeout(patience, rx.recv())
                .await
                .with_context(|| {
                    format!("repeat {repeat}: only {got} of {receivers} members got it")
                })?
                .context("every connection closed")?;
            if r != repeat {
                continue;
            }
            got += 1;
            first.get_or_insert(at);
            last = last.max(at);
        }
        result.last.push((last - sent).as_secs_f64() * 1e6);
        result
            .first
            .push((first.unwrap_or(sent) - sent).as_secs_f64() * 1e6);
    }
    Ok(result)
}

/// The repeat number of a frame carrying `fanout-mark <n>`, found without parsing the JSON (a thousand
/// clients parse in the same process as the timer).
fn marker(text: &str) -> Option<usize> {
    let at = text.find("fanout-mark ")? + "fanout-mark ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
