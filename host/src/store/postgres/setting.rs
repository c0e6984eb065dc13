//! The database setting (`--database`, `CHATHOOKS_DATABASE`) when it names a PostgreSQL server, and its
//! redacted form.
//!
//! Both forms libpq documents are accepted, parsed by tokio-postgres itself:
//! - a URL, `postgres://user:password@host:5432/database?connect_timeout=5` (`postgresql://` too; a
//!   Unix socket folder as a percent-encoded host, `postgres://user@%2Frun%2Fpostgresql/database`);
//! - a key-value string, `host=/run/postgresql dbname=chathooks user=chathooks password='a b'`.
//!
//! A setting often holds a password, and it ends up in error messages and logs (which server could we not
//! reach?). [`PgSetting`] therefore keeps the raw text nowhere: it holds the parsed configuration and a
//! [redacted](PgSetting::redacted) copy with every password replaced by `***`, and both its `Display` and
//! `Debug` show only that copy. The redaction works on the text, not the parsed form, so it also covers
//! settings that fail to parse.

use std::fmt;
use std::time::Duration;

use tokio_postgres::config::SslMode;

use super::error::{PgError, Result, describe};

/// What replaces a password in [`PgSetting::redacted`].
pub const REDACTED: &str = "***";

/// How long opening one connection may take when the setting does not say (`connect_timeout`). Without
/// it a server that drops packets would hold a start-up, or a request waiting for a new connection, for
/// the operating system's TCP timeout (minutes); five seconds is far above a healthy connect (about 10 ms
/// on loopback, a few round trips across zones).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `application_name` connections report unless the setting names another, so operators can tell
/// chathooks' sessions apart in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "chathooks";

/// A parsed PostgreSQL connection setting; shows itself only redacted.
#[derive(Clone)]
pub struct PgSetting {
    /// What tokio-postgres connects with (defaults filled in).
    config: tokio_postgres::Config,
    /// The text as given, passwords replaced.
    redacted: String,
}

impl PgSetting {
    /// Parses `text` (a URL or a key-value string, see the module docs).
    pub fn parse(text: &str) -> Result<Self> {
        let redacted = redact(text);
        let bad = |reason: String| PgError::BadSetting {
            setting: redacted.clone(),
            reason,
        };
        let mut config: tokio_postgres::Config =
            text.trim().parse().map_err(|e| bad(describe(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(bad(
                "it names no host: add `host=...` (a server name, or the folder of its \
                            Unix socket), or write postgres://host/database"
                    .to_owned(),
            ));
        }
        if config.get_user().is_none_or(str::is_empty) {
            return Err(bad(
                "it names no user: add `user=...`, or write postgres://user@host/database"
                    .to_owned(),
            ));
        }
        if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
            return Err(bad(
                "it requires TLS (sslmode=require), which this build cannot do yet; \
                            use sslmode=disable or prefer over a trusted network"
                    .to_owned(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        Ok(Self { config, redacted })
    }

    /// Whether `text` is meant for PostgreSQL rather than a SQLite file path: it starts with
    /// `postgres://` or `postgresql://`, or with `key=` like a key-value string (`host=...`). A SQLite
    /// path that starts like that can be written `./host=...`.
    pub fn is_postgres(text: &str) -> bool {
        let text = text.trim_start();
        if ["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| starts_with_ignore_case(text, scheme))
        {
            return true;
        }
        let key_len = text
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        key_len > 0 && text[key_len..].trim_start().starts_with('=')
    }

    /// The setting as given, with every password replaced by `***`: the only form for messages and logs.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The parsed configuration to connect with.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The same setting with the server parameter `name` set to `value` in every session it opens
    /// (`-c name=value` appended to the startup `options`, after any the setting gave, so it wins). The
    /// server applies it when the connection starts: no statement, no round trip. `value` must not contain
    /// spaces or backslashes (the options are split on spaces).
    pub fn with_server_parameter(mut self, name: &str, value: &str) -> Self {
        let option = format!("-c {name}={value}");
        let options = match self.config.get_options() {
            Some(given) if !given.trim().is_empty() => format!("{given} {option}"),
            _ => option,
        };
        self.config.options(&options);
        self
    }
}

impl fmt::Display for PgSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for PgSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgSetting").field(&self.redacted).finish()
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// `text` with every password replaced by [`REDACTED`]: in a URL, the password of the user info and any
/// `password=` query parameter; in a key-value string, the value of `password`. Ers on the side of
/// hiding: a malformed value is hidden to the end of the text.
pub fn redact(text: &str) -> String {
    match url_scheme_len(text) {
        Some(len) => {
            let (scheme, rest) = text.split_at(len);
            format!("{scheme}{}", redact_url_rest(rest))
        }
        None => redact_key_value(text),
    }
}

/// The length of `text`'s leading `scheme://` when it starts like a URL (any scheme, so that a URL for
/// the wrong kind of server is redacted too).
fn url_scheme_len(text: &str) -> Option<usize> {
    let scheme = text
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .count();
    let starts_with_letter = text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    (starts_with_letter && text[scheme..].starts_with("://")).then_some(scheme + 3)
}

/// Redacts what follows `scheme://` in a URL.
fn redact_url_rest(rest: &str) -> String {
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The user info ends at the last `@` before the query, so an `@` left unencoded in a password
    // cannot end it early.
    let mut out = match before_query.rfind('@') {
        Some(at) => {
            let (user_info, host_and_path) = before_query.split_at(at);
            match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:{REDACTED}{host_and_path}"),
                None => before_query.to_owned(),
            }
        }
        None => before_query.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}={REDACTED}")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// Redacts a key-value string: `key = value` pairs separated by whitespace, a value either bare (to the
/// next whitespace) or single-quoted, with `\` escaping the next character in both.
fn redact_key_value(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        let key_start = skip_space(at);
        out.push_str(&text[at..key_start]);
        if key_start == bytes.len() {
            return out;
        }
        let mut key_end = key_start;
        while key_end < bytes.len()
            && bytes[key_end] != b'='
            && !bytes[key_end].is_ascii_whitespace()
        {
            key_end += 1;
        }
        let equals = skip_space(key_end);
        if equals == bytes.len() || bytes[equals] != b'=' {
            // Not `key = value`: nothing we can tell apart; keep it unless it may hold a password.
            let rest = &text[key_start..];
            out.push_str(if rest.contains("password") {
                REDACTED
            } else {
                rest
            });
            return out;
        }
        let value_start = skip_space(equals + 1);
        let value_end = value_end(bytes, value_start);
        out.push_str(&text[key_start..value_start]);
        if text[key_start..key_end].eq_ignore_ascii_case("password") {
            out.push_str(REDACTED);
        } else {
            out.push_str(&text[value_start..value_end]);
        }
        at = value_end;
    }
}

/// Where the value starting at `start` ends (exclusive): after its closing quote, or at the next
/// whitespace; the end of the text when a quote is never closed.
fn value_end(bytes: &[u8], start: usize) -> usize {
    let quoted = bytes.get(start) == Some(&b'\'');
    let mut i = if quoted { start + 1 } else { start };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\'' if quoted => return i + 1,
            b if !quoted && b.is_ascii_whitespace() => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        for (given, shown) in [
            (
                "postgres://alice:s3cret@db.example:5432/chat?sslmode=disable",
                "postgres://alice:***@db.example:5432/chat?sslmode=disable",
            ),
            (
                "postgresql://alice:p@ss@db/chat",
                "postgresql://alice:***@db/chat",
            ),
            (
                "postgres://alice@db/chat?password=s3cret&application_name=x",
                "postgres://alice@db/chat?password=***&application_name=x",
            ),
            ("postgres://db/chat", "postgres://db/chat"),
            ("mysql://alice:s3cret@db/chat", "mysql://alice:***@db/chat"),
            (
                "postgres://alice@%2Frun%2Fpostgresql/chat",
                "postgres://alice@%2Frun%2Fpostgresql/chat",
            ),
        ] {
            assert_eq!(redact(given), shown, "{given}");
        }
    }

    #[test]
    fn key_value_strings_lose_their_passwords() {
        for (given, shown) in [
            (
                "host=/tmp/x dbname=chat user=alice password=s3cret",
                "host=/tmp/x dbname=chat user=alice password=***",
            ),
            ("password = s3cret host=db", "password = *** host=db"),
            ("password='a b\\' c' host=db", "password=*** host=db"),
            ("host=db password='never closed", "host=db password=***"),
            ("host=db stray password", "host=db ***"),
            ("  host=db  user=x ", "  host=db  user=x "),
        ] {
            assert_eq!(redact(given), shown, "{given}");
        }
    }

    #[test]
    fn tells_postgres_settings_from_sqlite_paths() {
        for postgres in [
            "postgres://db/chat",
            "PostgreSQL://db/chat",
            "host=/tmp dbname=x",
            " dbname = x",
        ] {
            assert!(PgSetting::is_postgres(postgres), "{postgres}");
        }
        for sqlite in [
            "data/chat.db",
            "/var/lib/chat.db",
            "./host=x.db",
            "chat.db",
            "",
        ] {
            assert!(!PgSetting::is_postgres(sqlite), "{sqlite}");
        }
    }

    #[test]
    fn parses_both_forms_and_fills_in_defaults() -> Result<()> {
        let url = PgSetting::parse("postgres://alice:s3cret@db:6543/chat")?;
        assert_eq!(url.config().get_dbname(), Some("chat"));
        assert_eq!(url.config().get_ports(), [6543]);
        assert_eq!(
            url.config().get_connect_timeout(),
            Some(&DEFAULT_CONNECT_TIMEOUT)
        );
        assert_eq!(url.config().get_application_name(), Some(APPLICATION_NAME));
        assert_eq!(url.to_string(), "postgres://alice:***@db:6543/chat");
        assert!(!format!("{url:?}").contains("s3cret"));

        let kv =
            PgSetting::parse("host=/tmp/sock user=bob dbname=x password=s3cret connect_timeout=2")?;
        assert_eq!(kv.config().get_user(), Some("bob"));
        assert_eq!(
            kv.config().get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
        assert_eq!(
            kv.redacted(),
            "host=/tmp/sock user=bob dbname=x password=*** connect_timeout=2"
        );
        Ok(())
    }

    #[test]
    fn refuses_settings_it_cannot_use_without_showing_the_password() {
        for (setting, expect) in [
            ("user=bob password=s3cret dbname=x", "names no host"),
            ("postgres://:s3cret@db/x", "names no user"),
            ("postgres://bob:s3cret@db/x?sslmode=require", "TLS"),
            ("postgres://bob:s3cret@db:notaport/x", "invalid"),
        ] {
            let err = PgSetting::parse(setting).map(|_| ()).err();
            let msg = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains(expect), "{setting}: {msg}");
            assert!(!msg.contains("s3cret"), "{setting}: {msg}");
        }
    }
}
