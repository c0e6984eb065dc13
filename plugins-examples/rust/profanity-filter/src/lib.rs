//! # profanity-filter
//!
//! A before-hook plugin: it looks at every message about to be sent or edited and
//!
//! - masks each blocked word with `*`s of the same length (whole words only, case-insensitive:
//!   `"What the HECK"` → `"What the ****"`, but `"heckle"` stays);
//! - rejects a message made only of blocked words (`"damn!"`) with the reason
//!   `message contains only blocked words`;
//! - allows everything else unchanged (the metadata is never touched).
//!
//! It shows the two before-hooks and the three [`Decision`]s. The word list is a constant for now; it will
//! come from the plugin's manifest once plugins get configuration.
//!
//! Build: `cargo build --target wasm32-wasip2 --release` in `plugins-examples/` gives
//! `target/wasm32-wasip2/release/profanity_filter.wasm`. Try it:
//! `chathooks test profanity_filter.wasm rust/profanity-filter/cases.json`.

use chathooks_sdk::prelude::*;

/// Blocked words, lower case. A word is a run of letters and digits, so `"heck's"` contains `"heck"`.
const BLOCKED_WORDS: &[&str] = &["darn", "heck", "damn", "crap", "frak", "bloody"];

/// The reason given to the sender of a message with nothing but blocked words.
const ONLY_BLOCKED: &str = "message contains only blocked words";

/// The plugin. Stateless: a decision depends only on the text.
struct ProfanityFilter;

/// What filtering a text found.
struct Filtered {
    /// The text with every blocked word masked.
    text: String,
    /// How many words the text has.
    words: usize,
    /// How many of them were blocked (and masked).
    blocked: usize,
}

/// Whether `word` is on the list, ignoring case.
fn is_blocked(word: &str) -> bool {
    let lower = word.to_lowercase();
    BLOCKED_WORDS.contains(&lower.as_str())
}

/// Masks the blocked words of `text`, keeping everything between words (spaces, punctuation) as it is.
fn filter(text: &str) -> Filtered {
    let mut out = Filtered {
        text: String::with_capacity(text.len()),
        words: 0,
        blocked: 0,
    };
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            end_word(&mut word, &mut out);
            out.text.push(c);
        }
    }
    end_word(&mut word, &mut out);
    out
}

/// Appends the finished `word` to `out`, masked if it is blocked, and empties `word`.
fn end_word(word: &mut String, out: &mut Filtered) {
    if word.is_empty() {
        return;
    }
    out.words += 1;
    if is_blocked(word) {
        out.blocked += 1;
        out.text
            .extend(std::iter::repeat_n('*', word.chars().count()));
    } else {
        out.text.push_str(word);
    }
    word.clear();
}

/// The decision for a message whose text is `body`.
fn decide(body: &str) -> Decision {
    let filtered = filter(body);
    if filtered.blocked == 0 {
        Decision::allow()
    } else if filtered.blocked == filtered.words {
        Decision::reject(ONLY_BLOCKED)
    } else {
        Decision::modify_body(filtered.text)
    }
}

#[chathooks_sdk::plugin]
impl Plugin for ProfanityFilter {
    fn before_message_sent(draft: Draft, _: Conversation) -> Decision {
        decide(&draft.body)
    }

    fn before_message_updated(_current: Message, draft: Draft, _: Conversation) -> Decision {
        decide(&draft.body)
    }
}
