//! The `chathooks serve` binary as an operator runs it: killed with SIGKILL mid-stream and restarted on
//! the same data folder, it has every message it acknowledged and delivers every committed event to the
//! after-hooks; a first start generates the admin key; SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chathooks::events::ChatEvent;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server_support::{ADMIN_KEY, copy_plugin, must, str_field};

/// A `chathooks serve` child process.
struct Served {
    child: Child,
    base: String,
    /// Everything it printed on stdout before the listening line.
    banner: Vec<String>,
}

/// Starts `chathooks serve` on `dir/data` and `dir/plugins`, on a free port; `admin_key` is passed as a
/// flag when given. Returns once it listens.
fn serve(dir: &Path, admin_key: Option<&str>) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chathooks"));
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--plugins-dir")
        .arg(dir.join("plugins"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(key) = admin_key {
        command.args(["--admin-key", key]);
    }
    let mut child = must(command.spawn(), "spawn chathooks serve");
    let stdout = child.stdout.take();
    let mut lines = BufReader::new(must(stdout.ok_or("no stdout"), "stdout")).lines();
    let mut banner = Vec::new();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let status = child.wait();
            panic!("chathooks serve exited before listening ({status:?}) after {banner:?}");
        };
        if let Some(addr) = line.strip_prefix("chathooks listening on ") {
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return Served {
                child,
                base: addr.to_owned(),
                banner,
            };
        }
        banner.push(line);
    }
}

impl Drop for Served {
    /// A failing test never leaves a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn kill(&mut self) {
        must(self.child.kill(), "SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status within ten seconds.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        must(
            Command::new("kill").args(["-TERM", &pid]).status(),
            "kill -TERM",
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = must(self.child.try_wait(), "wait") {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("chathooks serve did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> Result<Value, String> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let value: Value = response.json().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("{status} {value}"))
    }
}

/// The after-hook record keys the recorder must have for every event in the log.
fn expected_hook_records(db: &Path) -> Vec<String> {
    let conn = must(rusqlite::Connection::open(db), "open chat.db");
    let mut stmt = must(conn.prepare("SELECT id FROM events ORDER BY id"), "prepare");
    let ids: Vec<i64> = must(
        must(stmt.query_map([], |r| r.get(0)), "query").collect::<Result<_, _>>(),
        "ids",
    );
    ids.into_iter()
        .map(|id| {
            let stored = must(chathooks::store::Read::get_event(&conn, id), "event");
            let event = must(ChatEvent::from_stored(&stored), "decode event");
            format!("{}:{id}", event.hook().name())
        })
        .collect()
}

/// The recorder's KV keys.
fn recorded(kv: &Path) -> Vec<String> {
    let conn = must(rusqlite::Connection::open(kv), "open kv.db");
    let mut stmt = must(
        conn.prepare("SELECT key FROM plugin_kv WHERE plugin = 'recorder'"),
        "prepare",
    );
    must(
        must(stmt.query_map([], |r| r.get(0)), "query").collect::<Result<_, _>>(),
        "keys",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_message_and_no_after_hook() {
    let dir = chathooks_tests::temp_dir();
    std::fs::create_dir_all(dir.path().join("plugins")).ok();
    copy_plugin(
        &chathooks_tests::fixture("recorder"),
        &dir.path().join("plugins"),
    );
    let mut first = serve(dir.path(), Some(ADMIN_KEY));
    let http = reqwest::Client::new();
    let users = format!("{}/v1/admin/users", first.base);
    let mut tokens = Vec::new();
    for id in ["alice", "bob"] {
        let created = must(
            post(&http, &users, ADMIN_KEY, json!({"id": id, "name": id})).await,
            "user",
        );
        tokens.push(str_field(&created, "token"));
    }
    let conv_url = format!("{}/v1/conversations", first.base);
    let conv = must(
        post(
            &http,
            &conv_url,
            &tokens[0],
            json!({"participant_ids": ["bob"]}),
        )
        .await,
        "conv",
    );
    let conv = str_field(&conv, "id");

    // Two senders stream messages; each remembers what got a 2xx.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let url = format!("{}/v1/conversations/{conv}/messages", first.base);
    let mut senders = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        let (http, url, token, acked) = (http.clone(), url.clone(), token.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let body = json!({"body": format!("m{n}-{i}"), "client_id": format!("c{n}-{i}")});
                match post(&http, &url, &token, body).await {
                    Ok(message) => acked
                        .lock()
                        .map(|mut a| a.push(str_field(&message, "id")))
                        .unwrap_or(()),
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().map(|a| a.len()).unwrap_or(0) < 60 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    for sender in senders {
        let _ = sender.await;
    }
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(
        acked.len() >= 60,
        "only {} messages were acknowledged",
        acked.len()
    );

    let mut second = serve(dir.path(), Some(ADMIN_KEY));
    let mut stored = std::collections::HashSet::new();
    let mut before = i64::MAX;
    loop {
        let page_url = format!(
            "{}/v1/conversations/{conv}/messages?limit=200&before={before}",
            second.base
        );
        let response = must(
            http.get(&page_url).bearer_auth(&tokens[1]).send().await,
            "list",
        );
        assert_eq!(response.status(), StatusCode::OK);
        let page: Vec<Value> = must(response.json().await, "page");
        let Some(last) = page.last() else { break };
        before = last["seq"].as_i64().unwrap_or(0);
        stored.extend(page.iter().map(|m| str_field(m, "id")));
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after SIGKILL: {lost:?}"
    );

    // Every committed event (including those committed but not delivered when the process died) reaches
    // the recorder after the restart.
    let data = dir.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let expected = expected_hook_records(&data.join("chat.db"));
        let have: std::collections::HashSet<String> =
            recorded(&data.join("kv.db")).into_iter().collect();
        let missing: Vec<&String> = expected.iter().filter(|k| !have.contains(*k)).collect();
        if missing.is_empty() {
            assert!(
                expected.len() > acked.len(),
                "one event per stored message at least"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after-hooks never received {} events, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = second.terminate();
    assert!(status.success(), "graceful stop after SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_generates_the_admin_key_and_prints_it_once() {
    let dir = chathooks_tests::temp_dir();
    let mut first = serve(dir.path(), None);
    let line = first
        .banner
        .iter()
        .find(|l| l.contains("generated an admin key"));
    let key = line.and_then(|l| l.rsplit(": ").next()).map(str::to_owned);
    let key = must(
        key.ok_or(format!("no admin key printed: {:?}", first.banner)),
        "key",
    );
    let file: PathBuf = dir.path().join("data/admin.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = must(std::fs::metadata(&file), "admin.key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(must(std::fs::read_to_string(&file), "read key").trim(), key);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/admin/plugins", first.base);
    let ok = must(http.get(&url).bearer_auth(&key).send().await, "plugins");
    assert_eq!(ok.status(), StatusCode::OK);
    let status = first.terminate();
    assert!(status.success(), "first server after SIGTERM: {status}");

    let mut second = serve(dir.path(), None);
    assert!(
        second.banner.iter().all(|l| !l.contains("admin key")),
        "printed again: {:?}",
        second.banner
    );
    let url = format!("{}/v1/admin/plugins", second.base);
    let ok = must(http.get(&url).bearer_auth(&key).send().await, "plugins");
    assert_eq!(ok.status(), StatusCode::OK, "the stored key still works");
    let status = second.terminate();
    assert!(status.success(), "second server after SIGTERM: {status}");
}

/// What a `chathooks serve` that is expected to refuse to start did: its exit status and its stderr.
/// Panics if it starts serving instead.
fn serve_refused(dir: &Path) -> (std::process::ExitStatus, String) {
    let mut child = must(
        Command::new(env!("CARGO_BIN_EXE_chathooks"))
            .arg("serve")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-key",
                ADMIN_KEY,
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .arg("--plugins-dir")
            .arg(dir.join("plugins"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn(),
        "spawn chathooks serve",
    );
    let stdout = must(child.stdout.take().ok_or("no stdout"), "stdout");
    let (tx, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("chathooks listening on ") {
                let _ = tx.send(line);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = must(child.try_wait(), "wait") {
            break status;
        }
        let started = listening.try_recv().ok();
        if started.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a second server started on the same data folder: {started:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        must(pipe.read_to_string(&mut stderr), "read stderr");
    }
    (status, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_data_folder_refuses_naming_the_first_and_a_killed_ones_lock_does_not_linger()
 {
    let dir = chathooks_tests::temp_dir();
    let mut first = serve(dir.path(), Some(ADMIN_KEY));
    let (status, stderr) = serve_refused(dir.path());
    assert!(!status.success(), "refused, exit status {status}");
    let folder = dir.path().join("data");
    assert!(
        stderr.contains(&folder.display().to_string()),
        "names the folder: {stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.child.id())),
        "names the other process: {stderr}"
    );
    // The first one never noticed.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/admin/plugins", first.base);
    let ok = must(
        http.get(&url).bearer_auth(ADMIN_KEY).send().await,
        "plugins",
    );
    assert_eq!(ok.status(), StatusCode::OK);

    // SIGKILL leaves the lock file behind, but not the lock: the next start goes ahead.
    first.kill();
    let mut second = serve(dir.path(), Some(ADMIN_KEY));
    let url = format!("{}/v1/admin/plugins", second.base);
    let ok = must(
        http.get(&url).bearer_auth(ADMIN_KEY).send().await,
        "plugins",
    );
    assert_eq!(ok.status(), StatusCode::OK);
    let status = second.terminate();
    assert!(status.success(), "graceful stop after SIGTERM: {status}");
}
