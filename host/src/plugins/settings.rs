//! Typed settings (manifest v2): values a plugin declares in its manifest, with a type, a default and a
//! description, that an admin may change without touching the plugin's files.
//!
//! ```toml
//! version = "1.2.0"               # the plugin's own version (what `check` and the admin API show)
//! description = "Greets people added to a conversation"
//!
//! [settings.greeting]
//! type = "string"                 # string, integer, number, boolean, enum or secret
//! default = "Welcome, {name}!"
//! description = "What the bot posts; {name} is the new member"
//!
//! [settings.mode]
//! type = "enum"
//! values = ["strict", "lenient"]  # enum only: the allowed strings
//! default = "strict"
//!
//! [settings.api_token]
//! type = "secret"                 # a string never shown back by the admin API; it has no default
//! required = true                 # the plugin does not load until an admin sets it
//! ```
//!
//! A plugin reads a setting like a `[config]` value, through the `config` interface: the effective value
//! is the admin's override (stored in the database) if there is one, else the manifest's default; a
//! setting with neither is left out, unless it is `required`, which refuses the load
//! ([`SettingError::Missing`]). Declarations are checked when the manifest is read, each mistake named
//! with its key and line (`parse`); values (defaults and overrides) are checked against the declared
//! type ([`SettingSpec::check`]).
//!
//! The word: a plugin's *settings* here are these declared values. The older
//! [`PluginSettings`](super::manifest::PluginSettings) is everything a manifest says (priority, limits,
//! grants, config, and these).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest setting name: a name is a key of the plugin's config, not a sentence.
pub const MAX_SETTING_NAME_LEN: usize = 64;

/// Most settings one manifest may declare: enough for any plugin's knobs, and it bounds what the admin
/// API lists and stores per plugin.
pub const MAX_SETTINGS: usize = 100;

/// Longest string value (string, secret or enum) of a setting, in bytes: a greeting, a URL, a token.
/// Larger data belongs in KV, not in config that is copied into every instance.
pub const MAX_STRING_BYTES: usize = 16 << 10;

/// Longest manifest `version`, in characters: `1.2.0-beta.3+build.45` with room to spare.
pub const MAX_VERSION_LEN: usize = 64;

/// Longest `description` (of the plugin or of a setting), in characters: a paragraph.
pub const MAX_DESCRIPTION_LEN: usize = 1000;

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    /// Text.
    String,
    /// A whole number (64-bit, signed).
    Integer,
    /// Any number (64-bit float).
    Number,
    /// `true` or `false`.
    Boolean,
    /// One of the strings listed in `values`.
    Enum,
    /// Text an admin sets and the admin API never shows back (a token, a password). No default.
    Secret,
}

impl SettingType {
    /// The type's name in a manifest.
    pub fn name(self) -> &'static str {
        match self {
            SettingType::String => "string",
            SettingType::Integer => "integer",
            SettingType::Number => "number",
            SettingType::Boolean => "boolean",
            SettingType::Enum => "enum",
            SettingType::Secret => "secret",
        }
    }
}

/// One declared setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SettingSpec {
    /// Its name: the key the plugin reads through `config`.
    pub name: String,
    /// What it holds.
    #[serde(rename = "type")]
    pub kind: SettingType,
    /// The value when no admin has set one (never for a secret).
    pub default: Option<Value>,
    /// Whether the plugin refuses to load without a value.
    pub required: bool,
    /// What it is for, for admins.
    pub description: Option<String>,
    /// For `enum`: the allowed values.
    pub values: Vec<String>,
}

/// Why a setting's value is not acceptable, or missing. Each names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// The manifest declares no setting of that name.
    #[error("setting `{key}` is not declared in the plugin's manifest (declared: {declared})")]
    Unknown {
        /// The name given.
        key: String,
        /// The declared names, comma-separated (`none` when there are none).
        declared: String,
    },
    /// The value does not have the declared type (or is not one of an enum's values).
    #[error("setting `{key}` must be {expected}, not {found}")]
    WrongType {
        /// The setting.
        key: String,
        /// What the type accepts (`an integer`, `one of "a", "b"`).
        expected: String,
        /// What was given (a JSON rendering, secrets not included).
        found: String,
    },
    /// A required setting has no value.
    #[error(
        "setting `{key}` of plugin `{plugin}` is required and has no value; set it with \
         PATCH /v1/admin/plugins/{plugin}/settings (e.g. {{\"{key}\": ...}})"
    )]
    Missing {
        /// The plugin.
        plugin: String,
        /// The setting.
        key: String,
    },
}

impl SettingSpec {
    /// `value` if it has this setting's type, as the plugin will read it (an integral float given to a
    /// `number` stays as given; an integer given to a `number` is kept an integer).
    pub fn check(&self, value: &Value) -> Result<Value, SettingError> {
        let wrong = |expected: String| SettingError::WrongType {
            key: self.name.clone(),
            expected,
            found: self.describe_value(value),
        };
        let ok = match self.kind {
            SettingType::String | SettingType::Secret => {
                value.as_str().is_some_and(|s| s.len() <= MAX_STRING_BYTES)
            }
            SettingType::Integer => value.is_i64(),
            SettingType::Number => value.is_number(),
            SettingType::Boolean => value.is_boolean(),
            SettingType::Enum => value
                .as_str()
                .is_some_and(|s| self.values.iter().any(|v| v == s)),
        };
        if ok {
            return Ok(value.clone());
        }
        Err(wrong(match self.kind {
            SettingType::String | SettingType::Secret => {
                format!("a string of at most {MAX_STRING_BYTES} bytes")
            }
            SettingType::Integer => "a whole number (64-bit)".to_owned(),
            SettingType::Number => "a number".to_owned(),
            SettingType::Boolean => "true or false".to_owned(),
            SettingType::Enum => format!("one of {}", quoted(&self.values)),
        }))
    }

    /// `value` as an error message may show it: a secret's is never shown.
    fn describe_value(&self, value: &Value) -> String {
        if self.kind == SettingType::Secret {
            return match value {
                Value::String(_) => "a string that is too long".to_owned(),
                _ => format!(
                    "a JSON {} (not shown: the setting is a secret)",
                    json_kind(value)
                ),
            };
        }
        let text = value.to_string();
        match text.char_indices().nth(60) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        }
    }

    /// One line for `chathooks check`: `greeting (string, default "Welcome"): what the bot posts`.
    pub fn summary(&self) -> String {
        let mut kind = self.kind.name().to_owned();
        if self.kind == SettingType::Enum {
            kind = format!("enum {}", quoted(&self.values));
        }
        let value = match (&self.default, self.required) {
            (Some(default), _) => format!(", default {default}"),
            (None, true) => ", required: an admin must set it".to_owned(),
            (None, false) => ", no default".to_owned(),
        };
        let about = self
            .description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        format!("{} ({kind}{value}){about}", self.name)
    }
}

/// The JSON type of `value`: `number`, `object`, ...
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `"a", "b"`.
fn quoted(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    quoted.join(", ")
}

/// `[settings.<name>]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingDecl {
    #[serde(rename = "type")]
    kind: SettingType,
    #[serde(default)]
    default: Option<toml::Spanned<toml::Value>>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    values: Option<Vec<String>>,
}

/// The `[settings]` table as written: each setting with where its table starts in the text.
pub(super) type SettingsTable = BTreeMap<String, toml::Spanned<SettingDecl>>;

/// `line N: ` for byte offset `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// Checks the declarations of `table` (from manifest `text`, for line numbers) and returns them by
/// name. A mistake is named with the setting, the key and its line: `line 7: settings.mode.default:
/// must be one of "strict", "lenient", not "loose"`.
pub(super) fn parse(text: &str, table: SettingsTable) -> Result<Vec<SettingSpec>, String> {
    if table.len() > MAX_SETTINGS {
        return Err(format!(
            "settings: at most {MAX_SETTINGS} settings, not {}",
            table.len()
        ));
    }
    let mut specs = Vec::with_capacity(table.len());
    for (name, decl) in table {
        let line = line_of(text, decl.span().start);
        let decl = decl.into_inner();
        let at = |message: String| format!("line {line}: settings.{name}: {message}");
        let name_ok = !name.is_empty()
            && name.len() <= MAX_SETTING_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !name_ok {
            return Err(at(format!(
                "a setting's name is 1-{MAX_SETTING_NAME_LEN} letters, digits, '_' or '-'"
            )));
        }
        let values = match (decl.kind, decl.values) {
            (SettingType::Enum, Some(values)) if !values.is_empty() => values,
            (SettingType::Enum, _) => {
                return Err(at(
                    "an enum lists its allowed strings: values = [\"a\", \"b\"]".to_owned(),
                ));
            }
            (_, Some(_)) => {
                return Err(at(format!(
                    "values is for type = \"enum\" only, not {}",
                    decl.kind.name()
                )));
            }
            (_, None) => Vec::new(),
        };
        if let Some(description) = &decl.description
            && description.chars().count() > MAX_DESCRIPTION_LEN
        {
            return Err(at(format!(
                "description is longer than {MAX_DESCRIPTION_LEN} characters"
            )));
        }
        let mut spec = SettingSpec {
            name: name.clone(),
            kind: decl.kind,
            default: None,
            required: decl.required,
            description: decl.description,
            values,
        };
        if let Some(default) = decl.default {
            let default_line = line_of(text, default.span().start);
            let at_default = |message: String| {
                format!("line {default_line}: settings.{name}.default: {message}")
            };
            if spec.kind == SettingType::Secret {
                return Err(at_default(
                    "a secret has no default (a manifest is not a place for secrets); an admin sets \
                     it through the admin API"
                        .to_owned(),
                ));
            }
            if spec.required {
                return Err(at_default(
                    "a required setting has no default (with one it could never be missing); drop \
                     `required` or the default"
                        .to_owned(),
                ));
            }
            let json = serde_json::to_value(default.into_inner())
                .map_err(|e| at_default(format!("cannot be read: {e}")))?;
            let checked = spec.check(&json).map_err(|e| match e {
                SettingError::WrongType {
                    expected, found, ..
                } => at_default(format!("must be {expected}, not {found}")),
                other => at_default(other.to_string()),
            })?;
            spec.default = Some(checked);
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The effective config: `base` (the manifest's `[config]`) with each setting's override from
/// `overrides`, else its default. Overrides of settings the manifest no longer declares are ignored
/// (a new version may drop a setting; the stored value stays for a version that has it). Fails on an
/// override of the wrong type and on a required setting with no value.
pub fn effective(
    plugin: &str,
    specs: &[SettingSpec],
    base: &serde_json::Map<String, Value>,
    overrides: &serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, SettingError> {
    let mut config = base.clone();
    for spec in specs {
        let value = match overrides.get(&spec.name) {
            Some(value) => Some(spec.check(value)?),
            None => spec.default.clone(),
        };
        match value {
            Some(value) => {
                config.insert(spec.name.clone(), value);
            }
            None if spec.required => {
                return Err(SettingError::Missing {
                    plugin: plugin.to_owned(),
                    key: spec.name.clone(),
                });
            }
            None => {
                config.remove(&spec.name);
            }
        }
    }
    Ok(config)
}

/// The declared setting `key` of `specs`, or [`SettingError::Unknown`].
pub fn find<'a>(specs: &'a [SettingSpec], key: &str) -> Result<&'a SettingSpec, SettingError> {
    specs
        .iter()
        .find(|s| s.name == key)
        .ok_or_else(|| SettingError::Unknown {
            key: key.to_owned(),
            declared: if specs.is_empty() {
                "none".to_owned()
            } else {
                let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                names.join(", ")
            },
        })
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
