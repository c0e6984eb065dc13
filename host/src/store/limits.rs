//! The store's limits and id rules, the same for every backend: each a named constant saying why that
//! number (the API's field rules in `chat/fields.rs` and the OpenAPI document state them too).

use super::error::{Result, StoreError};
use super::records::NewConversation;
use crate::model::Millis;

/// Most participants one conversation may have. Every event of a conversation is routed to each
/// participant's connections, so this bounds the cost of one message.
pub const MAX_PARTICIPANTS: usize = 1000;

/// Most members of an event's audience written as rows of their own, one per member and event (an index
/// range per user, read in order when a client resumes). A larger audience is stored once and named by
/// the events that share it: a conversation's membership changes far less often than messages arrive,
/// so a message to 1,000 members writes one row instead of 1,000. 100 is also where an event's copy of
/// the conversation leaves out its participant ids (`events::MAX_EVENT_PARTICIPANT_IDS`).
pub const LARGE_AUDIENCE: usize = 100;

/// Longest title accepted, in characters: a line in a conversation list, with room to spare.
pub const MAX_TITLE_LEN: usize = 500;

/// Messages per page when the caller gives no limit: a screenful and a bit.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;

/// Most messages per page, so one request cannot make the server build a huge response.
pub const MAX_PAGE_LIMIT: u32 = 200;

/// Longest `client_id` accepted, in characters: enough for a UUID or ULID with a prefix.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Most events returned by one [`events_since`] call, so a client resuming after a long absence is
/// served in bounded chunks.
///
/// [`events_since`]: super::Read::events_since
pub const MAX_EVENTS_PAGE: u32 = 1000;

/// Prefix of every user token, so secret scanners and humans can recognise one.
pub const TOKEN_PREFIX: &str = "cht_";

/// How precisely `last_used_at` is kept: a token's use is written at most once per this interval, so
/// authenticating stays a read (a write per request would queue every request behind the one writer)
/// while admins still see which tokens are in use, to the minute.
pub const LAST_USED_RESOLUTION_MS: Millis = 60_000;

/// Most tokens one user may hold at once (expired ones do not count; they are dropped when the next is
/// issued). A person has a few devices; a hundred leaves room for scripts and bots of their own while
/// keeping a user's token list something an admin can read, and an issuing loop from filling the table.
pub const MAX_TOKENS_PER_USER: usize = 100;

/// Longest user id accepted; ids appear in URLs, JSON and every event's audience, so keep them short.
/// Ids are ASCII, so this counts characters and bytes alike.
pub const MAX_USER_ID_LEN: usize = 64;

/// The prefix of every bot user's id (`bot.<plugin>`), reserved for them. Compared without regard to
/// letter case, so `Bot.x` cannot pass for `bot.x` in a client that shows ids.
pub const BOT_ID_PREFIX: &str = "bot.";

/// Whether `id` is an acceptable user id (see [`NewUser::id`](super::records::NewUser::id)).
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_USER_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Whether `id` is in the bot namespace ([`BOT_ID_PREFIX`], any letter case).
pub fn is_bot_id(id: &str) -> bool {
    id.get(..BOT_ID_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(BOT_ID_PREFIX))
}

/// Longest emoji or short code accepted, in characters: a ZWJ family sequence is 7, a `:short_code:`
/// rarely over 40; anything longer is not an emoji.
pub const MAX_EMOJI_LEN: usize = 64;

/// The members a new conversation gets: its participants, then admins not among them, each once;
/// [`StoreError::Invalid`] when there are none or more than [`MAX_PARTICIPANTS`], or the title is too long.
/// The same rule on every backend.
pub fn conversation_members(new: &NewConversation) -> Result<Vec<String>> {
    let mut members: Vec<String> = Vec::new();
    for id in new.participant_ids.iter().chain(&new.admin_ids) {
        if !members.contains(id) {
            members.push(id.clone());
        }
    }
    if members.is_empty() {
        return Err(StoreError::Invalid(
            "participant_ids must not be empty".into(),
        ));
    }
    check_participant_count(members.len())?;
    check_title(new.title.as_deref())?;
    Ok(members)
}

/// [`StoreError::Invalid`] past [`MAX_PARTICIPANTS`].
pub fn check_participant_count(n: usize) -> Result<()> {
    if n > MAX_PARTICIPANTS {
        return Err(StoreError::Invalid(format!(
            "a conversation has at most {MAX_PARTICIPANTS} participants"
        )));
    }
    Ok(())
}

/// [`StoreError::Invalid`] for a title over [`MAX_TITLE_LEN`] characters.
pub fn check_title(title: Option<&str>) -> Result<()> {
    if title.is_some_and(|t| t.chars().count() > MAX_TITLE_LEN) {
        return Err(StoreError::Invalid(format!(
            "title is longer than {MAX_TITLE_LEN} characters"
        )));
    }
    Ok(())
}

/// The role stored in a participant row as `text`. Both schemas only let the three roles in (a `CHECK`),
/// so anything else is a hand-edited row, reported with what was found.
pub fn stored_role(user_id: &str, text: &str) -> Result<crate::model::Role> {
    crate::model::Role::parse(text).ok_or_else(|| {
        StoreError::Invalid(format!(
            "participant {user_id:?} has the unknown role {text:?}"
        ))
    })
}

/// Who owns a new conversation: the `owner_id` asked for if it is among the admins (the creator, as the
/// chat layer asks), else the first admin, else nobody. The owner is always an admin.
pub fn new_owner(new: &NewConversation) -> Option<&str> {
    match &new.owner_id {
        Some(owner) if new.admin_ids.contains(owner) => Some(owner.as_str()),
        _ => new.admin_ids.first().map(String::as_str),
    }
}
