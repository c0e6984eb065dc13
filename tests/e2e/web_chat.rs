//! The chat client (`/chat`) in a real headless Chromium: two people in two browser sessions on a server
//! running the real profanity filter. What one sends arrives rewritten in the other's window; a rejected
//! message shows the plugin's name and reason and keeps the draft; typing, reactions, read receipts,
//! edits and deletes reach the other side; a dropped connection catches up with `since`.

use serde_json::json;

use crate::server_support::TestServer;
use crate::web_support::{Browser, ENTER};

/// Signs `browser` in as the owner of `token` by the form, and opens conversation `conv`.
async fn sign_in_and_open(browser: &Browser, base: &str, token: &str, conv: &str) {
    browser.goto(&format!("{base}/chat")).await;
    browser.type_into("#token", token).await;
    browser.click("#signin-button").await;
    open(browser, conv).await;
}

/// Opens conversation `conv` and waits until it shows live events: the page marks it current once it
/// has fetched it (live-only events such as typing for a conversation not yet open are not shown), and
/// the connection is online.
async fn open(browser: &Browser, conv: &str) {
    browser
        .click(&format!("[data-conversation-id=\"{conv}\"]"))
        .await;
    browser
        .attr(
            &format!("[data-conversation-id=\"{conv}\"][aria-current=\"true\"]"),
            "id",
        )
        .await;
    browser
        .attr("#connection[data-state=\"online\"]", "id")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_through_a_plugin_in_two_browsers() {
    let Some(alice_window) = Browser::start().await else {
        return;
    };
    let Some(bob_window) = Browser::start().await else {
        return;
    };
    let server = TestServer::with_plugins(&[chathooks_tests::example("profanity_filter")]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let conv = server.conversation(&alice, &["bob"]).await;
    server
        .send(&bob, &conv, "hi alice, ready when you are")
        .await;

    sign_in_and_open(&alice_window, &server.base, &alice, &conv).await;
    // Bob comes through the console's link: the token in the fragment, which the page then removes.
    bob_window
        .goto(&format!("{}/chat#token={bob}", server.base))
        .await;
    open(&bob_window, &conv).await;
    assert!(
        !bob_window.url().await.contains(&bob),
        "the token left the address bar"
    );

    // Typing shows on the other side.
    alice_window.type_into("#composer-input", "what the ").await;
    bob_window.wait_text("#typing", "ALICE is typing").await;

    // The filter rewrites the message: both windows show what the server stored.
    alice_window
        .type_into("#composer-input", &format!("HECK is this{ENTER}"))
        .await;
    bob_window
        .wait_text(".message-body", "what the **** is this")
        .await;
    alice_window
        .wait_text(".message.mine .message-body", "what the **** is this")
        .await;
    assert_eq!(
        alice_window.value("#composer-input").await,
        "",
        "a sent message clears the draft"
    );

    // A message of blocked words only is rejected: the reason names the plugin, the draft stays.
    alice_window
        .type_into("#composer-input", &format!("darn!{ENTER}"))
        .await;
    alice_window
        .wait_text(
            "#composer-error",
            "Rejected by plugin profanity_filter: message contains only blocked words",
        )
        .await;
    assert_eq!(alice_window.value("#composer-input").await, "darn!");
    alice_window.clear("#composer-input").await;

    // Bob reads it (his window is open on it): Alice sees ✓✓; Bob reacts and Alice sees the count.
    alice_window
        .attr(".message.mine .receipt[data-state=\"read\"]", "data-state")
        .await;
    let masked = ".message:not(.mine):last-child .react[data-emoji=\"👍\"]";
    bob_window.click(masked).await;
    alice_window
        .wait_text(".message.mine .reaction", "👍 1")
        .await;

    // Edits and deletes reach the other window.
    alice_window.click(".message.mine .edit-button").await;
    alice_window.clear(".edit-box").await;
    alice_window
        .type_into(".edit-box", &format!("what is this, then{ENTER}"))
        .await;
    bob_window
        .wait_text(".message-body", "what is this, then")
        .await;
    bob_window.wait_text(".message .edited", "edited").await;

    // Bob's connection drops; what Alice sends meanwhile arrives once it is back (`?since=`).
    bob_window
        .eval("window.chathooksChat.live.pause()", json!([]))
        .await;
    bob_window
        .attr("#connection[data-state=\"offline\"]", "id")
        .await;
    server.send(&alice, &conv, "sent while you were away").await;
    bob_window
        .eval("window.chathooksChat.live.resume()", json!([]))
        .await;
    bob_window
        .wait_text(".message-body", "sent while you were away")
        .await;
    assert_eq!(
        bob_window.count(".message-body").await,
        alice_window.count(".message-body").await,
        "nothing twice, nothing missing"
    );

    alice_window.click(".message.mine .delete-button").await;
    bob_window
        .wait_text(".message-body.deleted", "deleted")
        .await;

    // Screenshots for the README: a desktop window and a phone-sized one.
    server.send(&bob, &conv, "see you at the launch 🎉").await;
    alice_window
        .wait_text(".message-body", "see you at the launch")
        .await;
    alice_window.screenshot("chat-desktop").await;
    bob_window.set_size(390, 844).await;
    bob_window.screenshot("chat-phone").await;
    // At phone width the page fits: nothing scrolls sideways.
    assert!(bob_window.fits_width().await);

    for (who, window) in [("alice", &alice_window), ("bob", &bob_window)] {
        // The one failed request expected: the rejected message's 422.
        let mut errors = window.console_errors().await;
        errors.retain(|e| {
            !e.contains(
                "/messages - Failed to load resource: the server responded with a status of 422",
            )
        });
        assert!(errors.is_empty(), "{who}'s page logged errors: {errors:?}");
    }
    alice_window.quit().await;
    bob_window.quit().await;
    server.stop().await;
}
