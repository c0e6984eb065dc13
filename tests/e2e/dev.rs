//! `chathooks dev` as an author runs it: a C starter in a temp folder, watched; an edit lands a new
//! component in the plugins folder, a failing case or a broken build leaves the deployed one alone.
//!
//! It waits on the command's own output lines (no fixed sleeps), with a generous ceiling for a slow build.

use super::languages::{skip, tools_path};
use chathooks_tests::temp_dir;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// Longest wait for one round (a C build takes about half a second).
const ROUND: Duration = Duration::from_secs(60);

struct Dev {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Dev {
    fn start(folder: &Path, plugins: &Path, cache: &Path) -> Dev {
        let plugins = plugins.to_string_lossy();
        Dev::start_with(folder, cache, &["--plugins-dir", &plugins], &[])
    }

    /// `chathooks dev <folder>` with `args` and `env` besides the usual.
    fn start_with(folder: &Path, cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chathooks"))
            .arg("dev")
            .arg(folder)
            .args(args)
            .args(["--debounce-ms", "50"])
            .envs(env.iter().copied())
            .env("PATH", tools_path())
            .env("CHATHOOKS_CACHE_DIR", cache)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chathooks dev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Dev {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`; panics with everything seen if none comes.
    fn wait_for(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(ROUND) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line starting {prefix:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read source");
    assert!(text.contains(from), "{from:?} not in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).expect("write source");
}

/// A C starter `demo` made by `chathooks new` in `dir`; its folder.
fn c_starter(dir: &Path) -> std::path::PathBuf {
    let output = Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .args(["new", "demo", "--lang", "c"])
        .current_dir(dir)
        .output()
        .expect("chathooks new");
    assert!(output.status.success(), "{output:?}");
    dir.join("demo")
}

#[test]
fn dev_deploys_good_builds_and_keeps_the_last_good_one() {
    if skip("c") {
        return;
    }
    let tmp = temp_dir();
    let folder = c_starter(tmp.path());
    let source = folder.join("demo.c");
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins folder");
    let deployed = plugins.join("demo.wasm");
    let read = || std::fs::read(&deployed).expect("the deployed component");

    let mut dev = Dev::start(&folder, &plugins, &tmp.path().join("cache"));
    dev.wait_for("deployed");
    let first = read();
    dev.wait_for("watching");

    // An edit that keeps the cases passing: a new component lands.
    edit(&source, "\" so far\"", "\" so far!\"");
    dev.wait_for("changed: ");
    dev.wait_for("deployed");
    let second = read();
    assert_ne!(first, second, "the edited component was deployed");

    // An edit that fails a case: the serving component stays.
    edit(&source, "\"no spam, please\"", "\"go away\"");
    dev.wait_for("FAIL before-message-sent rejects spam");
    dev.wait_for("tests failed");
    assert_eq!(read(), second, "a failing build was not deployed");

    // A build that fails: the same.
    edit(&source, "\"go away\"", "\"no spam, please\"  syntax error");
    dev.wait_for("build failed");
    assert_eq!(read(), second);

    // Fixed again: it deploys (the same bytes as the second build).
    edit(
        &source,
        "\"no spam, please\"  syntax error",
        "\"no spam, please\"",
    );
    dev.wait_for("deployed");
    assert_eq!(read(), second);
    let leftovers: Vec<_> = std::fs::read_dir(&plugins)
        .expect("list plugins")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("demo.wasm")]);
}

/// A plain HTTP/1.1 GET on 127.0.0.1:`port` with the admin key; the whole answer, or `None` when nothing
/// listens.
fn admin_get(port: u16, path: &str, key: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// `--serve --listen`: `dev` starts a server of its own on the plugin folder's `.chathooks/plugins`,
/// listening where it is told; the deployed plugin runs there, and the server stops when `dev` is killed.
#[test]
fn dev_serve_runs_the_plugin_on_a_server_of_its_own_that_stops_with_it() {
    if skip("c") {
        return;
    }
    let tmp = temp_dir();
    let folder = c_starter(tmp.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let key = "dev-serve-admin-key-0123456789";
    let mut dev = Dev::start_with(
        &folder,
        &tmp.path().join("cache"),
        &["--serve", "--listen", &listen],
        &[("CHATHOOKS_ADMIN_KEY", key)],
    );
    dev.wait_for("deployed");
    assert!(folder.join(".chathooks/plugins/demo.wasm").is_file());
    let deadline = std::time::Instant::now() + ROUND;
    loop {
        let plugins = admin_get(port, "/v1/admin/plugins", key).unwrap_or_default();
        if plugins.contains("\"demo\"") && plugins.contains("\"state\":\"active\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server on {listen} never ran demo; last answer:\n{plugins}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    drop(dev);
    let deadline = std::time::Instant::now() + ROUND;
    while admin_get(port, "/healthz", key).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server on {listen} outlived dev"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
