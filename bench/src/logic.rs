//! The work every hook variant of the dispatch benchmark does, written once and compiled into each of them:
//! the native floor, the bench guest component (`bench/guest`), the Extism guest (`bench/extism/guest`)
//! and the webhook server. It is included with `#[path]`, so it has no dependencies.
//!
//! - before-message-sent: mask every blocked word (whole words, ASCII case-insensitive) with `*`s;
//! - after-message-sent: bump the KV counter [`counter_key`] of the message's conversation by one.

/// Blocked words, lower case.
pub const BLOCKED: &[&str] = &["darn", "heck", "damn", "crap"];

/// `body` with each blocked word masked, or `None` when nothing was blocked (the hook allows the message).
pub fn mask(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut masked = false;
    let mut start = None;
    for (i, c) in body
        .char_indices()
        .chain(std::iter::once((body.len(), ' ')))
    {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            let word = &body[s..i];
            if BLOCKED.iter().any(|b| b.eq_ignore_ascii_case(word)) {
                out.extend(std::iter::repeat_n('*', word.len()));
                masked = true;
            } else {
                out.push_str(word);
            }
        }
        if i < body.len() {
            out.push(c);
        }
    }
    masked.then_some(out)
}

/// The KV key the after-hook increments for a message sent to `conversation_id`.
pub fn counter_key(conversation_id: &str) -> String {
    format!("messages:{conversation_id}")
}
