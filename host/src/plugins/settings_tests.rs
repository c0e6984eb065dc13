#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Value, json};

use super::*;
use crate::plugins::manifest::PluginSettings;

fn parse(text: &str) -> Result<PluginSettings, String> {
    PluginSettings::parse(text)
}

fn overrides(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

const V2: &str = r#"version = "1.2.0"
description = "Greets people"

[config]
fixed = 1

[settings.greeting]
type = "string"
default = "Welcome!"
description = "What the bot posts"

[settings.max_posts]
type = "integer"
default = 3

[settings.ratio]
type = "number"
default = 0.5

[settings.loud]
type = "boolean"

[settings.mode]
type = "enum"
values = ["strict", "lenient"]
default = "strict"

[settings.token]
type = "secret"
required = true
"#;

#[test]
fn a_v2_manifest_declares_typed_settings_whose_defaults_are_config() {
    let settings = parse(V2).unwrap();
    assert_eq!(settings.version.as_deref(), Some("1.2.0"));
    assert_eq!(settings.description.as_deref(), Some("Greets people"));
    let names: Vec<&str> = settings.settings.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["greeting", "loud", "max_posts", "mode", "ratio", "token"]
    );
    let mode = find(&settings.settings, "mode").unwrap();
    assert_eq!(
        (mode.kind, mode.values.clone()),
        (
            SettingType::Enum,
            vec!["strict".to_owned(), "lenient".to_owned()]
        )
    );
    // Defaults are config; a setting without one (loud, token) is not.
    assert_eq!(
        Value::Object(settings.powers.config.clone()),
        json!({"fixed": 1, "greeting": "Welcome!", "max_posts": 3, "ratio": 0.5, "mode": "strict"})
    );
}

#[test]
fn overrides_replace_defaults_and_a_required_setting_without_a_value_refuses() {
    let settings = parse(V2).unwrap();
    let missing = settings.resolved("greeter", &Map::new()).unwrap_err();
    assert_eq!(
        missing,
        SettingError::Missing {
            plugin: "greeter".to_owned(),
            key: "token".to_owned()
        }
    );
    assert!(
        missing
            .to_string()
            .contains("PATCH /v1/admin/plugins/greeter/settings")
    );
    let resolved = settings
        .resolved(
            "greeter",
            &overrides(json!({"token": "s3cret", "max_posts": 10, "loud": true, "gone": 1})),
        )
        .unwrap();
    assert_eq!(
        Value::Object(resolved.powers.config),
        json!({"fixed": 1, "greeting": "Welcome!", "max_posts": 10, "ratio": 0.5, "mode": "strict",
               "loud": true, "token": "s3cret"})
    );
    let wrong = settings
        .resolved(
            "greeter",
            &overrides(json!({"token": "t", "mode": "loose"})),
        )
        .unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "setting `mode` must be one of \"strict\", \"lenient\", not \"loose\""
    );
}

#[test]
fn values_are_checked_against_their_type() {
    let settings = parse(V2).unwrap();
    let check = |key: &str, value: Value| find(&settings.settings, key).unwrap().check(&value);
    assert!(check("max_posts", json!(-4)).is_ok());
    assert!(check("max_posts", json!(1.5)).is_err());
    assert!(check("max_posts", json!("3")).is_err());
    assert!(check("ratio", json!(2)).is_ok() && check("ratio", json!(2.5)).is_ok());
    assert!(check("ratio", json!(true)).is_err());
    assert!(check("loud", json!(false)).is_ok() && check("loud", json!(0)).is_err());
    assert!(check("greeting", json!("")).is_ok() && check("greeting", json!(null)).is_err());
    let long = "x".repeat(MAX_STRING_BYTES + 1);
    let secret = check("token", json!(long)).unwrap_err();
    assert!(!secret.to_string().contains("xxx"), "{secret}");
    let pin = check("token", json!(987654)).unwrap_err().to_string();
    assert!(
        !pin.contains("987654") && pin.contains("a JSON number"),
        "{pin}"
    );
    assert!(matches!(
        find(&settings.settings, "nope"),
        Err(SettingError::Unknown { key, declared })
            if key == "nope" && declared == "greeting, loud, max_posts, mode, ratio, token"
    ));
}

#[test]
fn mistakes_in_declarations_name_the_setting_and_its_line() {
    let cases = [
        (
            "version = \"1\"\n[settings.n]\ntype = \"integer\"\ndefault = \"three\"\n",
            "line 4: settings.n.default: must be a whole number (64-bit), not \"three\"",
        ),
        (
            "[settings.a]\ntype = \"string\"\n\n[settings.m]\ntype = \"enum\"\n",
            "line 4: settings.m: an enum lists its allowed strings",
        ),
        (
            "[settings.m]\ntype = \"string\"\nvalues = [\"a\"]\n",
            "line 1: settings.m: values is for type = \"enum\" only",
        ),
        (
            "[settings.t]\ntype = \"secret\"\ndefault = \"hunter2\"\n",
            "line 3: settings.t.default: a secret has no default",
        ),
        (
            "[settings.t]\ntype = \"string\"\nrequired = true\ndefault = \"x\"\n",
            "line 4: settings.t.default: a required setting has no default",
        ),
        (
            "[settings.\"two words\"]\ntype = \"string\"\n",
            "line 1: settings.two words: a setting's name is",
        ),
        (
            "[config]\ngreeting = \"hi\"\n[settings.greeting]\ntype = \"string\"\n",
            "line 2: settings.greeting: `greeting` is also in [config]",
        ),
        (
            "\nversion = \"1 2\"\n",
            "line 2: version must be 1-64 characters without spaces",
        ),
    ];
    for (text, start) in cases {
        let error = parse(text).expect_err(text);
        assert!(error.starts_with(start), "{text:?}: {error}");
    }
    // Errors serde finds (a bad type name, an unknown key) come with toml's line and the key.
    let bad_type = parse("[settings.x]\ntype = \"text\"\n").unwrap_err();
    assert!(
        bad_type.contains("line 2") && bad_type.contains("text"),
        "{bad_type}"
    );
    let typo = parse("[settings.x]\ntype = \"string\"\ndefualt = \"a\"\n").unwrap_err();
    assert!(
        typo.contains("line 3") && typo.contains("defualt"),
        "{typo}"
    );
    let no_type = parse("[settings.x]\ndefault = 1\n").unwrap_err();
    assert!(no_type.contains("type"), "{no_type}");
}

#[test]
fn a_v1_manifest_reads_as_before() {
    let v1 = parse("priority = 2\n[config]\ngreeting = \"hi\"\n").unwrap();
    assert_eq!((&v1.version, &v1.description), (&None, &None));
    assert!(v1.settings.is_empty());
    assert_eq!(
        Value::Object(v1.powers.config.clone()),
        json!({"greeting": "hi"})
    );
    let resolved = v1.resolved("x", &overrides(json!({"greeting": "ignored"})));
    assert_eq!(resolved.unwrap().powers.config, v1.powers.config);
}

#[test]
fn a_summary_line_says_type_default_and_requirement() {
    let settings = parse(V2).unwrap();
    let lines: Vec<String> = settings.settings.iter().map(SettingSpec::summary).collect();
    assert_eq!(
        lines,
        [
            "greeting (string, default \"Welcome!\"): What the bot posts",
            "loud (boolean, no default)",
            "max_posts (integer, default 3)",
            "mode (enum \"strict\", \"lenient\", default \"strict\")",
            "ratio (number, default 0.5)",
            "token (secret, required: an admin must set it)",
        ]
    );
}
