//! The OpenAPI document says what the server enforces: the schemas utoipa derives from the handlers' types
//! give each field's type; this adds each field's rule (lengths, patterns, item counts, ranges, which of
//! several fields a body needs) from [`crate::chat::fields`], the very rules the chat operations check
//! input with. A client generated from the document is then never refused input the document allows, and
//! a changed limit changes both at once.
//!
//! What JSON Schema cannot say is said in the field's description: the size of metadata in bytes, and
//! what depends on the server's state (whether the users named exist, whether a conversation would grow
//! past its limit, whether an edit leaves a message empty).

use serde_json::{Map, Value, json};

use crate::chat::fields::{self, Chars, List, Metadata, Range, Text};

/// A rule for one property of a request body's schema.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Text(Text),
    List(List),
    Metadata(Metadata),
    Range(Range),
}

impl Rule {
    fn field(&self) -> &'static str {
        match self {
            Rule::Text(t) => t.field,
            Rule::List(l) => l.field,
            Rule::Metadata(m) => m.field,
            Rule::Range(r) => r.field,
        }
    }
}

/// Every request body property with a rule, by the schema's component name.
const BODY_RULES: &[(&str, Rule)] = &[
    ("NewUser", Rule::Text(fields::USER_ID)),
    ("NewUser", Rule::Text(fields::USER_NAME)),
    ("NewUser", Rule::Metadata(fields::METADATA)),
    ("IssueToken", Rule::Range(fields::TOKEN_LIFETIME)),
    ("CreateConversation", Rule::Text(fields::TITLE)),
    ("CreateConversation", Rule::List(fields::PARTICIPANT_IDS)),
    ("CreateConversation", Rule::List(fields::ADMIN_IDS)),
    ("CreateConversation", Rule::Metadata(fields::METADATA)),
    ("UpdateConversation", Rule::Text(fields::TITLE)),
    ("UpdateConversation", Rule::Metadata(fields::METADATA)),
    ("AddParticipants", Rule::List(fields::USER_IDS)),
    ("SendMessage", Rule::Text(fields::BODY)),
    ("SendMessage", Rule::Text(fields::CLIENT_ID)),
    ("SendMessage", Rule::Metadata(fields::METADATA)),
    ("SendMessage", Rule::Text(fields::PARENT_ID)),
    ("RejectHeld", Rule::Text(fields::REASON)),
    ("TransferOwner", Rule::Text(fields::MEMBER_ID)),
    ("BanUser", Rule::Text(fields::MEMBER_ID)),
    ("BanUser", Rule::Text(fields::REASON)),
    ("EditMessage", Rule::Text(fields::BODY)),
    ("EditMessage", Rule::Metadata(fields::METADATA)),
    ("AddReaction", Rule::Text(fields::EMOJI)),
    ("AddDevice", Rule::Text(fields::PLATFORM)),
    ("AddDevice", Rule::Text(fields::DEVICE_TOKEN)),
];

/// Every query parameter with a rule: the path, the method and the rule (named by the parameter).
const QUERY_RULES: &[(&str, &str, Range)] = &[
    (
        "/v1/conversations/{id}/messages",
        "get",
        fields::MESSAGES_LIMIT,
    ),
    ("/v1/messages/{id}/replies", "get", fields::MESSAGES_LIMIT),
    (
        "/v1/conversations/{id}/threads",
        "get",
        fields::THREADS_LIMIT,
    ),
    ("/v1/admin/dead-letters", "get", fields::DEAD_LETTERS_LIMIT),
    ("/v1/admin/users", "get", fields::USERS_LIMIT),
];

/// What depends on the server's state, added to the field's description.
const STATE_NOTES: &[(&str, &str, &str)] = &[
    (
        "CreateConversation",
        "participant_ids",
        "Each must be an existing user (else 422 naming the item). The members (these, the admins and \
         the creator) are at most 1000.",
    ),
    (
        "CreateConversation",
        "admin_ids",
        "Each must be an existing user (else 422 naming the item); admins are members too.",
    ),
    (
        "AddParticipants",
        "user_ids",
        "Each must be an existing user (else 422 naming the item); a conversation has at most 1000 \
         members.",
    ),
    (
        "EditMessage",
        "body",
        "An edit that would leave the message with neither a body nor metadata is refused (409).",
    ),
];

/// Applies every rule to `doc` (the document as JSON). Returns the rules that found nothing to apply to
/// (a renamed type or field): empty when the document and the rules agree, which a test checks.
pub fn apply(doc: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (schema, rule) in BODY_RULES {
        match property(doc, schema, rule.field()) {
            Some(property) => apply_rule(property, rule),
            None => missing.push(format!("{schema}.{}", rule.field())),
        }
    }
    for (schema, field, note) in STATE_NOTES {
        match property(doc, schema, field) {
            Some(property) => append_description(property, note),
            None => missing.push(format!("{schema}.{field} (note)")),
        }
    }
    for (path, method, range) in QUERY_RULES {
        match query_parameter(doc, path, method, range.field) {
            Some(schema) => apply_range(schema, range),
            None => missing.push(format!("{method} {path}?{}", range.field)),
        }
    }
    document_body_limit(doc);
    for (schema, any_of) in [
        ("SendMessage", send_needs_content()),
        ("EditMessage", edit_needs_a_field()),
    ] {
        match doc.pointer_mut(&format!("/components/schemas/{schema}")) {
            Some(Value::Object(object)) => {
                object.insert("anyOf".into(), any_of);
            }
            _ => missing.push(format!("{schema} (anyOf)")),
        }
    }
    missing
}

/// Every operation that reads a body may answer 413: the server's body limit (`--body-limit`) applies
/// before anything else looks at the body.
fn document_body_limit(doc: &mut Value) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        if operation.get("requestBody").is_none() {
            continue;
        }
        if let Some(Value::Object(responses)) = operation.get_mut("responses") {
            responses.entry("413").or_insert_with(|| {
                json!({
                    "description": "The body is over the server's limit (`--body-limit`, 65536 bytes by default)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                })
            });
        }
    }
}

/// A message needs a body that is not blank or metadata with a key (`messages::has_content`).
fn send_needs_content() -> Value {
    json!([
        {"required": ["body"], "properties": {"body": {"pattern": fields::not_blank_pattern()}}},
        {"required": ["metadata"], "properties": {"metadata": {"type": "object", "minProperties": 1}}},
    ])
}

/// An edit gives a new body, new metadata or both (`null` is as good as absent).
fn edit_needs_a_field() -> Value {
    json!([
        {"required": ["body"], "properties": {"body": {"type": "string"}}},
        {"required": ["metadata"], "properties": {"metadata": {"type": "object"}}},
    ])
}

fn property<'a>(
    doc: &'a mut Value,
    schema: &str,
    field: &str,
) -> Option<&'a mut Map<String, Value>> {
    doc.pointer_mut(&format!("/components/schemas/{schema}/properties/{field}"))?
        .as_object_mut()
}

fn query_parameter<'a>(
    doc: &'a mut Value,
    path: &str,
    method: &str,
    name: &str,
) -> Option<&'a mut Map<String, Value>> {
    let escaped = path.replace('~', "~0").replace('/', "~1");
    doc.pointer_mut(&format!("/paths/{escaped}/{method}/parameters"))?
        .as_array_mut()?
        .iter_mut()
        .find(|p| p["name"] == name && p["in"] == "query")?
        .get_mut("schema")?
        .as_object_mut()
}

fn apply_rule(property: &mut Map<String, Value>, rule: &Rule) {
    match rule {
        Rule::Text(text) => apply_text(property, text),
        Rule::List(list) => {
            if list.min_items > 0 {
                property.insert("minItems".into(), list.min_items.into());
            }
            property.insert("maxItems".into(), list.max_items.into());
            if let Some(Value::Object(items)) = property.get_mut("items") {
                apply_text(items, &list.item);
            }
        }
        Rule::Metadata(metadata) => {
            property.insert("type".into(), json!(["object", "null"]));
            append_description(
                property,
                &format!(
                    "A JSON object (`null` means none), at most {} bytes as JSON.",
                    metadata.max_bytes
                ),
            );
        }
        Rule::Range(range) => apply_range(property, range),
    }
}

fn apply_text(schema: &mut Map<String, Value>, text: &Text) {
    if text.min_chars > 0 {
        schema.insert("minLength".into(), text.min_chars.into());
    }
    schema.insert("maxLength".into(), text.max_chars.into());
    if let Some(pattern) = text.pattern() {
        schema.insert("pattern".into(), pattern.into());
    }
    if text.chars == Chars::Any {
        // With "type", so the rule does not also refuse `null` where a field may be null.
        schema.insert(
            "not".into(),
            json!({ "type": "string", "pattern": fields::NUL_PATTERN }),
        );
    }
}

fn apply_range(schema: &mut Map<String, Value>, range: &Range) {
    schema.insert("minimum".into(), range.min.into());
    schema.insert("maximum".into(), range.max.into());
}

fn append_description(schema: &mut Map<String, Value>, note: &str) {
    let text = match schema.get("description").and_then(Value::as_str) {
        Some(existing) if !existing.is_empty() => format!("{existing} {note}"),
        _ => note.to_owned(),
    };
    schema.insert("description".into(), text.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_lands_on_the_document() {
        let doc = crate::api::openapi_document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["AddReaction"]["properties"]["emoji"]["maxLength"],
            json!(crate::store::limits::MAX_EMOJI_LEN)
        );
        assert_eq!(
            schemas["AddParticipants"]["properties"]["user_ids"]["minItems"],
            json!(1)
        );
        assert!(schemas["SendMessage"]["anyOf"].is_array());
        let send = &doc["paths"]["/v1/conversations/{id}/messages"];
        assert!(send["post"]["responses"]["413"].is_object());
        assert!(send["get"]["responses"].get("413").is_none());
        let mut raw = crate::api::raw_openapi_document();
        assert_eq!(apply(&mut raw), Vec::<String>::new());
    }
}
