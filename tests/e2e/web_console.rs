//! The operator console (`/console`) in a real headless Chromium: sign-in with the admin key (a wrong one
//! is refused with the server's reason), the real example plugins listed live, a plugin disabled and
//! enabled from the console with the server agreeing, the live tail showing a message and a plugin's log
//! line, the charts drawn, and a user with a token and its chat link made from the Users tab.

use reqwest::Method;
use serde_json::{Value, json};

use crate::server_support::{ADMIN_KEY, TestServer};
use crate::web_support::Browser;

/// The state `GET /v1/admin/plugins` gives `name`.
async fn state_of(server: &TestServer, name: &str) -> Value {
    let (_, plugins) = server
        .call(Method::GET, "/v1/admin/plugins", Some(ADMIN_KEY), None)
        .await;
    plugins
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == name))
        .map_or(Value::Null, |p| p["state"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_and_switches_plugins_in_the_console() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::with_plugins(&[
        chathooks_tests::example("profanity_filter"),
        chathooks_tests::example("message_stats"),
    ])
    .await;
    let alice = server.user("alice").await;
    server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    server.send(&alice, &conv, "good morning").await;

    browser.goto(&format!("{}/console", server.base)).await;
    browser.type_into("#admin-key", "not-the-admin-key").await;
    browser.click("#signin-button").await;
    browser
        .wait_text("#signin-error", "That key was refused")
        .await;
    browser.clear("#admin-key").await;
    browser.type_into("#admin-key", ADMIN_KEY).await;
    browser.click("#signin-button").await;

    // Both plugins, live, with their hooks and the call the first message made.
    let filter = "tr[data-plugin=\"profanity_filter\"]";
    browser
        .attr(&format!("{filter}[data-state=\"active\"]"), "data-state")
        .await;
    browser
        .wait_text(&format!("{filter} .hooks"), "before-message-sent")
        .await;
    browser
        .wait_text("tr[data-plugin=\"message_stats\"]", "after-message-sent")
        .await;

    // The live tail shows a message sent now and the counter's log line about it.
    browser.click("[data-tab=\"activity\"]").await;
    browser.attr("#tail-state[data-state=\"live\"]", "id").await;
    server.send(&alice, &conv, "is the tail live?").await;
    browser
        .wait_text("#tail .tail-event", "is the tail live?")
        .await;
    browser.wait_text("#tail .tail-log", "message_stats").await;
    browser.screenshot("console-tail").await;

    // Disabled in the console: the server agrees, and the filter no longer rewrites.
    browser.click("[data-tab=\"plugins\"]").await;
    browser.click(&format!("{filter} .disable")).await;
    browser
        .attr(&format!("{filter}[data-state=\"off\"]"), "data-state")
        .await;
    assert_eq!(state_of(&server, "profanity_filter").await, json!("off"));
    let unfiltered = server.send(&alice, &conv, "what the heck").await;
    assert_eq!(unfiltered["body"], "what the heck");
    browser.click(&format!("{filter} .enable")).await;
    browser
        .attr(&format!("{filter}[data-state=\"active\"]"), "data-state")
        .await;
    assert_eq!(state_of(&server, "profanity_filter").await, json!("active"));

    // The charts, once the history has a few samples with calls between them.
    for round in 1..=8 {
        for n in 0..round % 4 + 1 {
            let text = format!("round {round}, heck {n}");
            server.send(&alice, &conv, &text).await;
        }
        let history = &server.running.state.history;
        history.sample().await.expect("a sample");
    }
    // A fresh load (the key stays for the tab) draws them from the samples at once.
    browser.goto(&format!("{}/console", server.base)).await;
    browser
        .wait_text("[data-chart=\"Hook calls per second\"]", "profanity_filter")
        .await;
    browser
        .attr("[data-chart=\"Hook latency p99\"] path.chart-line", "d")
        .await;
    browser.screenshot("console-plugins").await;
    browser.set_size(390, 844).await;
    browser.screenshot("console-phone").await;
    // At phone width only the tables scroll sideways, inside their frames; the page fits.
    assert!(browser.fits_width().await);
    browser.set_size(1280, 900).await;

    // A new user, and a token with a link that opens the chat as them.
    browser.click("[data-tab=\"users\"]").await;
    browser.type_into("#new-user-id", "carol").await;
    browser.type_into("#new-user-name", "Carol").await;
    browser
        .click("#new-user-form button[type=\"submit\"]")
        .await;
    browser.wait_text("#issued", "Open chat as carol").await;
    let link = browser
        .attr("#issued a.btn-primary", "href")
        .await
        .unwrap_or_default();
    let token = link.split("#token=").nth(1).unwrap_or_default().to_owned();
    let (status, me) = server.call(Method::GET, "/v1/me", Some(&token), None).await;
    assert_eq!((status.as_u16(), me["id"].clone()), (200, json!("carol")));
    browser
        .wait_text("tr[data-user-id=\"carol\"]", "Carol")
        .await;

    // The one failed request expected: the wrong key's 401.
    let mut errors = browser.console_errors().await;
    errors.retain(|e| !e.contains("/v1/admin/plugins - Failed to load resource: the server responded with a status of 401"));
    assert!(errors.is_empty(), "the console logged errors: {errors:?}");
    browser.quit().await;
    server.stop().await;
}
