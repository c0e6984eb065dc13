//! A real headless Chromium driven over the WebDriver protocol, for the web pages' tests.
//!
//! [`Browser::start`] opens a session (a Chromium process of its own) on the `chromedriver` that
//! `chathooks-testservers` starts once per test binary; `None` when Chromium is not installed (a panic
//! instead under `CHATHOOKS_REQUIRE_BROWSER=1`, as in CI). Every lookup takes a CSS selector and waits up
//! to [`PATIENCE`] for the page to get there, the way a user waits for a page: tests say what they expect
//! to see, not when.
//!
//! Screenshots go to `<target dir>/screenshots/<name>.png` (or `$CHATHOOKS_SCREENSHOTS/<name>.png`).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use chathooks_testservers::Chromedriver;
use reqwest::Method;
use serde_json::{Value, json};

use crate::server_support::{PATIENCE, must};

/// The WebDriver key code of Enter, for [`Browser::type_into`].
pub const ENTER: &str = "\u{E007}";

/// The key WebDriver names a found element by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where screenshots go unless `CHATHOOKS_SCREENSHOTS` says otherwise.
pub const SCREENSHOTS_ENV: &str = "CHATHOOKS_SCREENSHOTS";

/// How often a waiting lookup looks again.
const POLL: Duration = Duration::from_millis(50);

/// One browser session; closed by [`Browser::quit`] or, if a test failed first, on drop.
pub struct Browser {
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    /// The WebDriver HTTP client.
    http: reqwest::Client,
    /// Set once the session was deleted.
    closed: bool,
}

/// A WebDriver command that failed: its `error` code and message.
#[derive(Debug)]
pub struct WebDriverError {
    /// E.g. `no such element`, `stale element reference`, `element not interactable`.
    pub error: String,
    /// The driver's message.
    pub message: String,
}

impl Browser {
    /// A new session of headless Chromium, 1280x900; `None` when Chromium is not installed here.
    pub async fn start() -> Option<Browser> {
        let driver = Chromedriver::shared()?;
        let http = reqwest::Client::new();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": driver.browser(),
                "args": [
                    "--headless=new",
                    // Tests run as root in CI, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    "--window-size=1280,900",
                    "--lang=en-GB",
                ],
            },
        }}});
        let answer = http
            .post(format!("{}/session", driver.url()))
            .json(&capabilities)
            .send()
            .await;
        let answer: Value = must(
            must(answer, "start a browser session").json().await,
            "read it",
        );
        let Some(id) = answer["value"]["sessionId"].as_str() else {
            panic!(
                "chromedriver did not start a session: {answer}\nits log:\n{}",
                driver.log()
            );
        };
        Some(Browser {
            session: format!("{}/session/{id}", driver.url()),
            http,
            closed: false,
        })
    }

    /// Runs one WebDriver command; its `value`, or the driver's error.
    async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = must(request.send().await, "send a WebDriver command");
        let ok = answer.status().is_success();
        let value: Value = must(answer.json().await, "read a WebDriver answer");
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if ok {
            Ok(value)
        } else {
            Err(WebDriverError {
                error: value["error"].as_str().unwrap_or("unknown").to_owned(),
                message: value["message"].as_str().unwrap_or_default().to_owned(),
            })
        }
    }

    /// Runs `command`, panicking with `what` when it fails.
    async fn must_command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Value {
        match self.command(method, path, body).await {
            Ok(value) => value,
            Err(err) => panic!("{what}: {}: {}", err.error, err.message),
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.must_command(
            Method::POST,
            "/url",
            Some(json!({"url": url})),
            &format!("open {url}"),
        )
        .await;
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        let value = self
            .must_command(Method::GET, "/url", None, "read the URL")
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Retries `attempt` until it gives `Some`, up to [`PATIENCE`]; panics naming `what` and the last
    /// WebDriver error otherwise.
    async fn eventually<T, F, Fut>(&self, what: &str, mut attempt: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, WebDriverError>>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = String::from("not yet");
        loop {
            match attempt().await {
                Ok(Some(value)) => return value,
                Ok(None) => {}
                Err(err) => last = format!("{}: {}", err.error, err.message),
            }
            if tokio::time::Instant::now() > deadline {
                let url = self.url().await;
                panic!("waited {PATIENCE:?} for {what} on {url}; last: {last}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The WebDriver id of the first element matching `css`, now.
    async fn element_now(&self, css: &str) -> Result<Option<String>, WebDriverError> {
        let body = json!({"using": "css selector", "value": css});
        match self.command(Method::POST, "/element", Some(body)).await {
            Ok(value) => Ok(value[ELEMENT_KEY].as_str().map(str::to_owned)),
            Err(err) if err.error == "no such element" => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Waits for an element matching `css`; its WebDriver id.
    async fn element(&self, css: &str) -> String {
        self.eventually(&format!("an element matching `{css}`"), || {
            self.element_now(css)
        })
        .await
    }

    /// Waits for an element matching `css` and clicks it (retrying while it is covered or not yet
    /// interactable).
    pub async fn click(&self, css: &str) {
        self.eventually(&format!("a clickable `{css}`"), || async {
            let Some(id) = self.element_now(css).await? else {
                return Ok(None);
            };
            self.command(
                Method::POST,
                &format!("/element/{id}/click"),
                Some(json!({})),
            )
            .await
            .map(Some)
        })
        .await;
    }

    /// Waits for an element matching `css` and types `text` into it (keys such as [`ENTER`] included).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.eventually(&format!("an editable `{css}`"), || async {
            let Some(id) = self.element_now(css).await? else {
                return Ok(None);
            };
            self.command(
                Method::POST,
                &format!("/element/{id}/value"),
                Some(json!({"text": text})),
            )
            .await
            .map(Some)
        })
        .await;
    }

    /// Waits for an element matching `css` and empties it (an input or textarea).
    pub async fn clear(&self, css: &str) {
        let id = self.element(css).await;
        self.must_command(
            Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
            &format!("clear `{css}`"),
        )
        .await;
    }

    /// The attribute `name` of the first element matching `css` (waiting for it); `None` when unset.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let id = self.element(css).await;
        let value = self
            .must_command(
                Method::GET,
                &format!("/element/{id}/attribute/{name}"),
                None,
                "read an attribute",
            )
            .await;
        value.as_str().map(str::to_owned)
    }

    /// Waits until some element matching `css` shows text containing `contains`; that element's text.
    pub async fn wait_text(&self, css: &str, contains: &str) -> String {
        let script = "return Array.from(document.querySelectorAll(arguments[0]))\
                      .map(e => e.innerText).find(t => t.includes(arguments[1])) ?? null";
        self.eventually(&format!("`{css}` showing {contains:?}"), || async {
            let found = self.eval_result(script, json!([css, contains])).await?;
            Ok(found.as_str().map(str::to_owned))
        })
        .await
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        let n = self
            .eval(
                "return document.querySelectorAll(arguments[0]).length",
                json!([css]),
            )
            .await;
        n.as_u64().unwrap_or(0) as usize
    }

    /// The value of the form field matching `css` (a draft in a text box, say).
    pub async fn value(&self, css: &str) -> String {
        let value = self
            .eval(
                "return document.querySelector(arguments[0])?.value ?? null",
                json!([css]),
            )
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Whether the page fits the window's width: nothing makes the whole page scroll sideways.
    pub async fn fits_width(&self) -> bool {
        let script = "return document.documentElement.scrollWidth <= window.innerWidth";
        self.eval(script, json!([])).await == json!(true)
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; what it returns.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        match self.eval_result(script, args).await {
            Ok(value) => value,
            Err(err) => panic!("script failed: {}: {}\n{script}", err.error, err.message),
        }
    }

    async fn eval_result(&self, script: &str, args: Value) -> Result<Value, WebDriverError> {
        self.command(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Sets the window's size in CSS pixels (e.g. 390x844 for a phone).
    pub async fn set_size(&self, width: u32, height: u32) {
        self.must_command(
            Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
            "resize the window",
        )
        .await;
    }

    /// Saves a PNG of the page as `<screenshots>/<name>.png`; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let value = self
            .must_command(Method::GET, "/screenshot", None, "take a screenshot")
            .await;
        let png = must(
            base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or_default()),
            "decode the screenshot",
        );
        let dir = screenshots_dir();
        must(
            std::fs::create_dir_all(&dir),
            "create the screenshots folder",
        );
        let path = dir.join(format!("{name}.png"));
        must(std::fs::write(&path, png), "write the screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// What the page wrote to its console at level SEVERE since the last call: script errors, failed
    /// requests, Content-Security-Policy violations.
    pub async fn console_errors(&self) -> Vec<String> {
        let value = self
            .must_command(
                Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
                "read the browser's console",
            )
            .await;
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Ends the session (closes its Chromium).
    pub async fn quit(mut self) {
        self.closed = true;
        let _ = self.command(Method::DELETE, "", None).await;
    }
}

impl Drop for Browser {
    /// A test that failed before [`Browser::quit`] still closes its Chromium: a blocking `DELETE` of the
    /// session on a thread of its own (drop cannot await).
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let session = self.session.clone();
        let _ = std::thread::spawn(move || delete_session(&session)).join();
    }
}

/// `DELETE <session>` over a plain TCP connection.
fn delete_session(session: &str) {
    use std::io::{Read, Write};
    let Some(rest) = session.strip_prefix("http://") else {
        return;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

/// `$CHATHOOKS_SCREENSHOTS`, else `screenshots` beside this test binary's temp folder in the target
/// folder.
pub fn screenshots_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(SCREENSHOTS_ENV) {
        return PathBuf::from(dir);
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map_or(tmp.clone(), |target| target.join("screenshots"))
}
