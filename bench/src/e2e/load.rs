//! The load generator of section 2 (`chathooks-bench load`, a process of its own): N clients, each on its
//! own keep-alive connection posting to its own conversation, the next message as soon as the answer to the
//! last arrives. It prints one JSON line, a [`LoadResult`].

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// One client of the load generator: who it is and where it writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Target {
    /// Bearer token.
    pub token: String,
    /// Its conversation.
    pub conversation: String,
    /// The server it posts to, `http://host:port`, when not the load generator's `--base` (the nodes of
    /// a cluster each get a share of the clients).
    #[serde(default)]
    pub base: Option<String>,
}

/// What the load generator prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoadResult {
    /// Successful requests (how many messages the server stored).
    pub sent: u64,
    /// Failed requests.
    pub errors: u64,
    /// From the first request to the last answer, seconds.
    pub seconds: f64,
    /// Latencies, µs (each client's first requests left out).
    pub micros: Vec<f64>,
    /// CPU the load generator used, seconds (its start and set-up included).
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
}

/// Requests of each client left out of the latency figures (connection set-up, caches warming).
pub const WARMUP_PER_CLIENT: usize = 20;

/// `chathooks-bench load`: N clients each posting `messages` messages, the next as soon as the answer to
/// the last arrives.
pub fn load(args: &LoadArgs) -> anyhow::Result<()> {
    let targets: Vec<Target> = serde_json::from_str(&std::fs::read_to_string(&args.targets)?)?;
    anyhow::ensure!(targets.len() >= args.clients, "fewer targets than clients");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (base, messages) = (args.base.clone(), args.messages);
    let result = runtime.block_on(async move {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (c, target) in targets.into_iter().take(args.clients).enumerate() {
            let base = target.base.as_deref().unwrap_or(&base);
            let url = format!("{base}/v1/conversations/{}/messages", target.conversation);
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
                let (mut sent, mut errors, mut micros) = (0u64, 0u64, Vec::new());
                for k in 0..messages {
                    let t = Instant::now();
                    let body = serde_json::json!({"body": format!("message {k} from client {c}: what the heck")});
                    let ok = match http.post(&url).bearer_auth(&target.token).json(&body).send().await {
                        Ok(r) => {
                            let ok = r.status().is_success();
                            r.bytes().await.is_ok() && ok
                        }
                        Err(_) => false,
                    };
                    if !ok {
                        errors += 1;
                        continue;
                    }
                    sent += 1;
                    if k >= WARMUP_PER_CLIENT {
                        micros.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                Ok::<_, anyhow::Error>((sent, errors, micros))
            }));
        }
        let mut total = LoadResult {
            sent: 0,
            errors: 0,
            seconds: 0.0,
            micros: Vec::new(),
            cpu_seconds: None,
        };
        for task in tasks {
            let (sent, errors, micros) = task.await??;
            total.sent += sent;
            total.errors += errors;
            total.micros.extend(micros);
        }
        total.seconds = started.elapsed().as_secs_f64();
        total.cpu_seconds = crate::proc::cpu_time(std::process::id()).map(|t| t.as_secs_f64());
        Ok::<_, anyhow::Error>(total)
    })?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// The arguments of the `load` subcommand.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The server, `http://host:port`.
    #[arg(long)]
    pub base: String,
    /// JSON file of `{token, conversation}` per client.
    #[arg(long)]
    pub targets: PathBuf,
    /// Concurrent clients.
    #[arg(long)]
    pub clients: usize,
    /// Messages each client sends.
    #[arg(long)]
    pub messages: usize,
}
