//! What each request field must be, stated once. The chat operations check their input with these rules,
//! and the OpenAPI document's schemas are written from the same rules (`api::contract`), so a client
//! generated from the document is never refused input the document allows, and the two cannot drift.
//!
//! Lengths count characters (Unicode scalar values), which is what JSON Schema's `minLength` and
//! `maxLength` count; a limit in bytes could not be stated in the document.

use super::ChatError;
use super::messages::{MAX_BODY_CHARS, MAX_METADATA_BYTES};
use crate::events::to_wit;
use crate::store::limits::{
    BOT_ID_PREFIX, MAX_CLIENT_ID_LEN, MAX_EMOJI_LEN, MAX_PAGE_LIMIT, MAX_PARTICIPANTS,
    MAX_TITLE_LEN, MAX_USER_ID_LEN,
};

/// Longest display name of a user, in characters. Names are shown beside every message and embedded in
/// every event about the user's messages; 128 fits any real name with room to spare.
pub const MAX_USER_NAME_CHARS: usize = 128;

/// Longest device token, in characters: APNs tokens are 64 hex characters, FCM tokens about 160; 4096
/// leaves room for any push service without letting a client store blobs.
pub const MAX_DEVICE_TOKEN_CHARS: usize = 4096;

/// Longest platform name (`ios`, `android`, `web`, ...).
pub const MAX_PLATFORM_CHARS: usize = 32;

/// Longest moderator's reason, in characters: one or two sentences shown to a sender.
pub const MAX_REASON_CHARS: usize = 1000;

/// Most dead letters one page lists: a screenful for an admin, a bounded query for the server.
pub const MAX_DEAD_LETTERS_PAGE: u32 = 500;

/// Most users one page of the admin's user list holds, for the same reasons.
pub const MAX_USERS_PAGE: u32 = 500;

/// Longest lifetime a token can be issued with: a year. Long enough for a device that rarely signs in;
/// short enough that a token forgotten on an old device stops working on its own.
pub const MAX_TOKEN_LIFETIME_SECONDS: u64 = 365 * 24 * 60 * 60;

/// The characters `char::is_whitespace` (Unicode `White_Space`) accepts, as ranges: what "blank" means
/// here, spelled so that a JSON Schema pattern can say the same.
const WHITESPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// Whether `text` is empty or only whitespace.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// A JSON Schema pattern matching any text that is not blank (it contains a non-whitespace character).
pub fn not_blank_pattern() -> String {
    let mut class = String::from("[^");
    for &(from, to) in WHITESPACE {
        class.push_str(&escape_char(from));
        if to != from {
            class.push('-');
            class.push_str(&escape_char(to));
        }
    }
    class.push(']');
    class
}

fn escape_char(c: char) -> String {
    if c.is_ascii_graphic() || c == ' ' {
        c.to_string()
    } else {
        format!("\\u{:04X}", u32::from(c))
    }
}

/// A JSON Schema pattern matching text that holds the NUL character, which no text field accepts (the
/// document says `"not": {"type": "string", "pattern": NUL_PATTERN}`).
pub const NUL_PATTERN: &str = "\\u0000";

/// Which characters a text field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chars {
    /// Anything.
    Any,
    /// ASCII letters, digits, `_`, `-` and `.`: ids that are mentionable as `@id` and safe in URLs.
    Id,
}

/// The rule for one string field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    /// The JSON field, as errors and the document name it.
    pub field: &'static str,
    /// Fewest characters.
    pub min_chars: usize,
    /// Most characters.
    pub max_chars: usize,
    /// Which characters.
    pub chars: Chars,
    /// Must hold something other than whitespace.
    pub not_blank: bool,
    /// A prefix (any letter case) the value must not start with.
    pub reserved_prefix: Option<&'static str>,
}

impl Text {
    const fn new(field: &'static str, min_chars: usize, max_chars: usize) -> Self {
        Text {
            field,
            min_chars,
            max_chars,
            chars: Chars::Any,
            not_blank: false,
            reserved_prefix: None,
        }
    }

    const fn id_chars(mut self) -> Self {
        self.chars = Chars::Id;
        self
    }

    const fn not_blank(mut self) -> Self {
        self.not_blank = true;
        self
    }

    /// [`ChatError::Invalid`] naming the field unless `value` follows the rule.
    pub fn check(&self, value: &str) -> Result<(), ChatError> {
        self.check_as(self.field, value)
    }

    /// Like [`Text::check`], naming `field` (e.g. `participant_ids[2]` for an item of a list).
    pub fn check_as(&self, field: &str, value: &str) -> Result<(), ChatError> {
        let fail = |message: String| Err(ChatError::invalid(field, message));
        let count = value.chars().count();
        if count < self.min_chars || count > self.max_chars {
            return fail(if self.min_chars == 0 {
                format!("must be at most {} characters", self.max_chars)
            } else {
                format!("must be {}-{} characters", self.min_chars, self.max_chars)
            });
        }
        if self.chars == Chars::Id
            && !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return fail("may hold only ASCII letters, digits, '_', '-' and '.'".into());
        }
        if value.contains('\0') {
            // Chat text has no use for it, and PostgreSQL cannot store it in a text column: refusing it
            // here keeps both backends alike.
            return fail("must not contain the NUL character (U+0000)".into());
        }
        if self.not_blank && is_blank(value) {
            return fail("must not be blank".into());
        }
        if let Some(prefix) = self.reserved_prefix
            && value
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        {
            return fail(format!(
                "ids starting with {prefix:?} are reserved for plugins' bot users"
            ));
        }
        Ok(())
    }

    /// The JSON Schema pattern saying what [`Text::chars`], [`Text::not_blank`] and
    /// [`Text::reserved_prefix`] say, if any of them says something. That no text holds the NUL
    /// character is said apart ([`NUL_PATTERN`]), as `"not": {"pattern": ...}`: one more regular expression
    /// to satisfy at once is more than schema-driven generators (schemathesis) can manage.
    ///
    /// [`Text::not_blank`]: field@Text::not_blank
    pub fn pattern(&self) -> Option<String> {
        let reserved = self.reserved_prefix.map(|prefix| {
            let spelled: String = prefix
                .chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else if c.is_ascii_alphanumeric() {
                        c.to_string()
                    } else {
                        format!("\\{c}")
                    }
                })
                .collect();
            format!("(?!{spelled})")
        });
        match (self.chars, self.not_blank) {
            (Chars::Id, _) => Some(format!("^{}[A-Za-z0-9_.-]*$", reserved.unwrap_or_default())),
            (Chars::Any, true) => Some(format!(
                "{}{}",
                reserved.map(|r| format!("^{r}")).unwrap_or_default(),
                not_blank_pattern()
            )),
            (Chars::Any, false) => reserved.map(|r| format!("^{r}")),
        }
    }
}

/// The rule for a list of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct List {
    /// The JSON field.
    pub field: &'static str,
    /// Fewest items.
    pub min_items: usize,
    /// Most items.
    pub max_items: usize,
    /// Each item's rule (errors name the item as `field[i]`).
    pub item: Text,
}

impl List {
    /// [`ChatError::Invalid`] naming the field or the item unless `values` follow the rule.
    pub fn check(&self, values: &[String]) -> Result<(), ChatError> {
        if values.len() < self.min_items || values.len() > self.max_items {
            return Err(ChatError::invalid(
                self.field,
                if self.min_items == 0 {
                    format!("must have at most {} items", self.max_items)
                } else {
                    format!("must have {}-{} items", self.min_items, self.max_items)
                },
            ));
        }
        for (i, value) in values.iter().enumerate() {
            self.item.check_as(&format!("{}[{i}]", self.field), value)?;
        }
        Ok(())
    }
}

/// The rule for a whole number (a query parameter or a body field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The parameter or field.
    pub field: &'static str,
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
}

impl Range {
    /// [`ChatError::Invalid`] naming the field unless `min <= value <= max`.
    pub fn check(&self, value: u64) -> Result<(), ChatError> {
        if value < self.min || value > self.max {
            return Err(ChatError::invalid(
                self.field,
                format!("must be {}-{}, not {value}", self.min, self.max),
            ));
        }
        Ok(())
    }
}

/// The rule for a metadata field: a JSON object (or `null`, meaning `{}`) of bounded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// The JSON field.
    pub field: &'static str,
    /// Largest size as JSON text, in bytes (not expressible in JSON Schema: the document says it in the
    /// field's description).
    pub max_bytes: usize,
}

impl Metadata {
    /// [`ChatError::Invalid`] naming the field unless `value` is an object (or null) within the size.
    pub fn check(&self, value: &serde_json::Value) -> Result<(), ChatError> {
        if !(value.is_null() || value.is_object()) {
            return Err(ChatError::invalid(self.field, "must be a JSON object"));
        }
        if to_wit::json(value).len() > self.max_bytes {
            return Err(ChatError::invalid(
                self.field,
                format!("must be at most {} bytes as JSON", self.max_bytes),
            ));
        }
        Ok(())
    }
}

/// `NewUser.id`: a new user's id.
pub const USER_ID: Text = Text {
    reserved_prefix: Some(BOT_ID_PREFIX),
    ..Text::new("id", 1, MAX_USER_ID_LEN).id_chars()
};
/// `NewUser.name`.
pub const USER_NAME: Text = Text::new("name", 1, MAX_USER_NAME_CHARS).not_blank();
/// An existing user's id in a list (bots included): `participant_ids`, `admin_ids`, `user_ids`.
pub const MEMBER_ID: Text = Text::new("user_id", 1, MAX_USER_ID_LEN).id_chars();
/// `CreateConversation.participant_ids`.
pub const PARTICIPANT_IDS: List = List {
    field: "participant_ids",
    min_items: 0,
    max_items: MAX_PARTICIPANTS,
    item: MEMBER_ID,
};
/// `CreateConversation.admin_ids`.
pub const ADMIN_IDS: List = List {
    field: "admin_ids",
    ..PARTICIPANT_IDS
};
/// `AddParticipants.user_ids`.
pub const USER_IDS: List = List {
    field: "user_ids",
    min_items: 1,
    ..PARTICIPANT_IDS
};
/// A conversation's title.
pub const TITLE: Text = Text::new("title", 0, MAX_TITLE_LEN);
/// A message's body (a blank body needs metadata: see `messages::check_content`).
pub const BODY: Text = Text::new("body", 0, MAX_BODY_CHARS);
/// `SendMessage.client_id`.
pub const CLIENT_ID: Text = Text::new("client_id", 1, MAX_CLIENT_ID_LEN);
/// `SendMessage.parent_id`: a message id.
pub const PARENT_ID: Text = Text::new("parent_id", 1, MAX_CLIENT_ID_LEN).id_chars();
/// A moderator's reason (`RejectHeld.reason`): a sentence for the sender, not an essay.
pub const REASON: Text = Text::new("reason", 0, MAX_REASON_CHARS);
/// `AddReaction.emoji`.
pub const EMOJI: Text = Text::new("emoji", 1, MAX_EMOJI_LEN).not_blank();
/// `AddDevice.platform`.
pub const PLATFORM: Text = Text::new("platform", 1, MAX_PLATFORM_CHARS).id_chars();
/// `AddDevice.token`.
pub const DEVICE_TOKEN: Text = Text::new("token", 1, MAX_DEVICE_TOKEN_CHARS);
/// The metadata of a message, a conversation or a user.
pub const METADATA: Metadata = Metadata {
    field: "metadata",
    max_bytes: MAX_METADATA_BYTES,
};
/// `limit` of `GET /v1/conversations/{id}/messages`.
pub const MESSAGES_LIMIT: Range = Range {
    field: "limit",
    min: 1,
    max: MAX_PAGE_LIMIT as u64,
};
/// `limit` of `GET /v1/conversations/{id}/threads`.
pub const THREADS_LIMIT: Range = Range {
    field: "limit",
    min: 1,
    max: crate::chat::threads::MAX_THREADS_PAGE as u64,
};
/// `limit` of `GET /v1/admin/dead-letters`.
pub const DEAD_LETTERS_LIMIT: Range = Range {
    field: "limit",
    min: 1,
    max: MAX_DEAD_LETTERS_PAGE as u64,
};
/// `limit` of `GET /v1/admin/users`.
pub const USERS_LIMIT: Range = Range {
    field: "limit",
    min: 1,
    max: MAX_USERS_PAGE as u64,
};
/// `expires_in_seconds` of a new token.
pub const TOKEN_LIFETIME: Range = Range {
    field: "expires_in_seconds",
    min: 1,
    max: MAX_TOKEN_LIFETIME_SECONDS,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_ranges_are_exactly_what_is_whitespace_accepts() {
        let listed = |c: char| WHITESPACE.iter().any(|&(from, to)| from <= c && c <= to);
        let disagree: Vec<char> = (0..=0x10_FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| c.is_whitespace() != listed(c))
            .collect();
        assert!(disagree.is_empty(), "{disagree:?}");
        assert_eq!(
            not_blank_pattern(),
            "[^\\u0009-\\u000D \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028-\\u2029\\u202F\\u205F\\u3000]"
        );
    }

    #[test]
    fn texts_are_checked_in_characters_and_name_their_field() {
        let err = |rule: Text, value: &str| match rule.check(value) {
            Err(ChatError::Invalid { field, message }) => format!("{field}: {message}"),
            other => format!("{other:?}"),
        };
        assert!(EMOJI.check(&"é".repeat(MAX_EMOJI_LEN)).is_ok());
        assert_eq!(err(EMOJI, " \u{3000}"), "emoji: must not be blank");
        assert_eq!(err(USER_ID, "bot.echo"), USER_ID_RESERVED);
        assert_eq!(err(USER_ID, "BoT.echo"), USER_ID_RESERVED);
        assert!(USER_ID.check("bot").is_ok() && USER_ID.check("robot.x").is_ok());
        assert_eq!(
            err(USER_ID, "a b"),
            "id: may hold only ASCII letters, digits, '_', '-' and '.'"
        );
        assert_eq!(err(PLATFORM, ""), "platform: must be 1-32 characters");
        let items = USER_IDS.check(&["bob".to_owned(), String::new()]);
        assert!(matches!(items, Err(ChatError::Invalid { field, .. }) if field == "user_ids[1]"));
        assert!(USER_IDS.check(&[]).is_err() && PARTICIPANT_IDS.check(&[]).is_ok());
        assert_eq!(
            USER_ID.pattern().as_deref(),
            Some("^(?![Bb][Oo][Tt]\\.)[A-Za-z0-9_.-]*$")
        );
        assert_eq!(TITLE.pattern(), None);
        assert_eq!(
            err(BODY, "a\0b"),
            "body: must not contain the NUL character (U+0000)"
        );
        assert_eq!(
            err(EMOJI, "\0"),
            "emoji: must not contain the NUL character (U+0000)"
        );
        assert!(BODY.check("").is_ok() && EMOJI.check("\u{1F600}").is_ok());
        assert_eq!(
            NUL_PATTERN, "\\u0000",
            "a JSON Schema (ECMA-262) escape of U+0000"
        );
    }

    const USER_ID_RESERVED: &str =
        "id: ids starting with \"bot.\" are reserved for plugins' bot users";
}
