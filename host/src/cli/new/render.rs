//! Turning the templates into a starter's files: the source with one function per hook (signatures read
//! from `wit/hooks.wit`), the build script, the README, and for Python, JavaScript and C the WIT folder.

use super::sdk;
use super::signature::signature;
use super::{Lang, cases::cases};
use crate::plugins::bindings::WIT_VERSION;
use crate::plugins::{Hook, HookKind};
use anyhow::{Context, bail};
use std::path::Path;

/// Toolchain versions the starters name: the pins of `scripts/build-plugins.sh` (a test checks).
pub(super) const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
pub(super) const JCO_VERSION: &str = "1.35.0";
pub(super) const WIT_BINDGEN_VERSION: &str = "0.63.0";
pub(super) const WASM_TOOLS_VERSION: &str = "1.263.0";

/// The server's WIT package, copied into starters that need it to build.
pub(super) const WIT_FILES: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../../../wit/types.wit")),
    ("hooks.wit", include_str!("../../../../wit/hooks.wit")),
    ("host.wit", include_str!("../../../../wit/host.wit")),
    ("powers.wit", include_str!("../../../../wit/powers.wit")),
    ("worlds.wit", include_str!("../../../../wit/worlds.wit")),
];

/// One file of a starter, relative to its folder.
pub(super) struct File {
    pub(super) path: String,
    pub(super) text: String,
    pub(super) executable: bool,
}

impl File {
    fn new(path: impl Into<String>, text: String) -> File {
        File {
            path: path.into(),
            text,
            executable: false,
        }
    }
}

/// One parameter of a hook, as the WIT names it (`new-users: list<user>`).
pub(super) struct Param {
    pub(super) name: &'static str,
    pub(super) ty: &'static str,
}

/// The parameters of `hook`, read from its `func(...)` line in the WIT.
pub(super) fn params(hook: Hook) -> anyhow::Result<Vec<Param>> {
    let prefix = format!("{}: func(", hook.name());
    let line = WIT_FILES
        .iter()
        .flat_map(|(_, text)| text.lines())
        .map(str::trim)
        .find(|line| line.starts_with(&prefix))
        .with_context(|| format!("no `{prefix}` in the WIT"))?;
    let list = &line[prefix.len()..];
    let list = list.split_once(')').map(|(l, _)| l).unwrap_or(list);
    list.split(", ")
        .map(|param| {
            let (name, ty) = param
                .split_once(": ")
                .with_context(|| format!("cannot read parameter `{param}` of {}", hook.name()))?;
            Ok(Param { name, ty })
        })
        .collect()
}

/// Whether starters can implement `hook`: the snippets read `draft` in before-hooks and the event
/// `context` in the others (after-hooks), so a hook without them needs snippets of its own first; until
/// then `chathooks new` refuses it. (`if`s rather than `match`es on the kind, here and below, so that a
/// new kind of hook leaves this file compiling.)
pub(super) fn supported(hook: Hook) -> bool {
    let needs = if hook.kind() == HookKind::Before {
        "draft"
    } else {
        "context"
    };
    params(hook).is_ok_and(|params| params.iter().any(|p| p.name == needs))
}

/// The templates of one language.
struct Templates {
    source: &'static str,
    before_helpers: &'static str,
    after_helpers: &'static str,
    before_hook: &'static str,
    after_hook: &'static str,
    build: &'static str,
}

fn templates(lang: Lang) -> Templates {
    macro_rules! lang {
        ($dir:literal, $source:literal, $ext:literal) => {
            Templates {
                source: include_str!(concat!("../templates/", $dir, "/", $source)),
                before_helpers: include_str!(concat!(
                    "../templates/",
                    $dir,
                    "/before-helpers.",
                    $ext
                )),
                after_helpers: include_str!(concat!(
                    "../templates/",
                    $dir,
                    "/after-helpers.",
                    $ext
                )),
                before_hook: include_str!(concat!("../templates/", $dir, "/before-hook.", $ext)),
                after_hook: include_str!(concat!("../templates/", $dir, "/after-hook.", $ext)),
                build: include_str!(concat!("../templates/", $dir, "/build.sh")),
            }
        };
    }
    match lang {
        Lang::Rust => lang!("rust", "lib.rs", "rs"),
        Lang::Python => lang!("python", "app.py", "py"),
        Lang::Js => lang!("js", "plugin.js", "js"),
        Lang::C => lang!("c", "plugin.c", "c"),
    }
}

/// Every file of the starter `name` in `lang` implementing `hooks`; a Rust starter given `sdk` (the
/// absolute folder of a local `chathooks-sdk`) builds against it (see [`sdk`]).
pub(super) fn render(
    name: &str,
    lang: Lang,
    hooks: &[Hook],
    sdk: Option<&Path>,
) -> anyhow::Result<Vec<File>> {
    let t = templates(lang);
    let snake_name = snake(name);
    let vars = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut vars = vec![
            ("name".to_string(), name.to_string()),
            ("snake".to_string(), snake_name.clone()),
            ("wit_version".to_string(), WIT_VERSION.to_string()),
            (
                "componentize_py".to_string(),
                COMPONENTIZE_PY_VERSION.into(),
            ),
            ("jco".to_string(), JCO_VERSION.to_string()),
            ("wit_bindgen".to_string(), WIT_BINDGEN_VERSION.to_string()),
            ("wasm_tools".to_string(), WASM_TOOLS_VERSION.to_string()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        vars
    };

    let mut code = String::new();
    for &hook in hooks {
        if lang == Lang::Rust && !code.is_empty() {
            code.push('\n'); // a blank line between functions (the other languages' snippets start with one)
        }
        let params = params(hook)?;
        let snippet = if hook.kind() == HookKind::Before {
            t.before_hook
        } else {
            t.after_hook
        };
        let signature = signature(lang, hook, &params);
        code.push_str(&fill(
            snippet,
            &vars(&[
                ("hook", hook.name()),
                ("fn", &signature.function),
                ("params", &signature.params),
                ("class", &camel(hook.name())),
                ("object", &lower_camel(hook.name())),
                ("free", &signature.frees),
            ]),
        )?);
    }
    let has = |kind: HookKind| hooks.iter().any(|h| h.kind() == kind);
    let helpers = |kind: HookKind, text: &'static str| if has(kind) { text } else { "" };
    let source = fill(
        t.source,
        &vars(&[
            ("type_name", &camel(name)),
            (
                "before_helpers",
                helpers(HookKind::Before, t.before_helpers),
            ),
            ("after_helpers", helpers(HookKind::After, t.after_helpers)),
            ("hooks", &code),
        ]),
    )?;

    let (source_path, install) = match lang {
        Lang::Rust => (
            "src/lib.rs".to_string(),
            "rustup target add wasm32-wasip2".to_string(),
        ),
        Lang::Python => (
            "app.py".to_string(),
            format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION}"),
        ),
        Lang::Js => (
            "plugin.js".to_string(),
            "# node >= 20 and npm; build.sh installs jco".into(),
        ),
        Lang::C => (
            format!("{snake_name}.c"),
            format!(
                "apt-get install clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc\n\
                 cargo install --locked wit-bindgen-cli@{WIT_BINDGEN_VERSION} wasm-tools@{WASM_TOOLS_VERSION}"
            ),
        ),
    };
    let hook_list: Vec<&str> = hooks.iter().map(|h| h.name()).collect();
    let notes = match lang {
        Lang::Rust => include_str!("../templates/rust/README-sdk.md"),
        _ => {
            "\n`wit/world.wit` lists the hooks the plugin exports; `wit/deps/chathooks-plugin/` is the server's\n\
              WIT package (`hooks.wit` has every hook with its parameters).\n"
        }
    };
    let mut behaviour = String::new();
    if has(HookKind::Before) {
        behaviour
            .push_str("Its before-hooks reject a message that mentions spam and allow the rest.\n");
    }
    if has(HookKind::After) {
        behaviour.push_str(
            "Its after-hooks count their events in the plugin's KV store, once per event even when the \
             server\nretries one.\n",
        );
    }
    let readme_vars = vars(&[
        ("behaviour", &behaviour),
        ("language", lang.title()),
        ("lang", lang.name()),
        ("hook_list", &hook_list.join(",")),
        ("hook_prose", &hook_list.join(", ")),
        ("source", &source_path),
        ("install", &install),
        ("notes", notes),
    ]);
    let mut files = vec![
        File::new(source_path, source),
        File::new("cases.json", cases(hooks)?),
        File::new(
            "README.md",
            fill(include_str!("../templates/README.md"), &readme_vars)?,
        ),
        File::new(
            ".gitignore",
            include_str!("../templates/gitignore").to_string(),
        ),
        File {
            path: "build.sh".into(),
            text: fill(t.build, &vars(&[]))?,
            executable: true,
        },
    ];
    match lang {
        Lang::Rust => {
            let cargo = include_str!("../templates/rust/Cargo.toml.tmpl");
            files.push(File::new(
                "Cargo.toml",
                fill(cargo, &vars(&[("sdk_version", &sdk::requirement())]))?,
            ));
            if let Some(sdk) = sdk {
                files.push(File::new(".cargo/config.toml", sdk::cargo_config(sdk)));
            }
        }
        Lang::Python | Lang::Js | Lang::C => {
            let exports: String = hooks
                .iter()
                .map(|h| format!("    export chathooks:plugin/{}@{WIT_VERSION};\n", h.name()))
                .collect();
            let world = include_str!("../templates/world.wit");
            files.push(File::new(
                "wit/world.wit",
                fill(world, &vars(&[("exports", &exports)]))?,
            ));
            for (file, text) in WIT_FILES {
                files.push(File::new(
                    format!("wit/deps/chathooks-plugin/{file}"),
                    text.to_string(),
                ));
            }
            if lang == Lang::Js {
                let package = include_str!("../templates/js/package.json");
                files.push(File::new("package.json", fill(package, &vars(&[]))?));
            }
        }
    }
    Ok(files)
}

/// `template` with every `{{key}}` replaced by its value. A placeholder left over is a bug in the
/// templates, reported rather than written out.
fn fill(template: &str, vars: &[(String, String)]) -> anyhow::Result<String> {
    let mut text = template.to_string();
    for (key, value) in vars {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(at) = text.find("{{") {
        let rest: String = text[at..].chars().take(40).collect();
        bail!("template placeholder left unfilled: {rest}");
    }
    Ok(text)
}

/// `after-message-sent` → `after_message_sent`.
pub(super) fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// `after-message-sent` → `AfterMessageSent`.
pub(super) fn camel(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `after-message-sent` → `afterMessageSent`.
pub(super) fn lower_camel(name: &str) -> String {
    let upper = camel(name);
    let mut chars = upper.chars();
    chars
        .next()
        .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every hook of every language renders with no placeholder left and a parseable case file.
    #[test]
    fn every_hook_renders_in_every_language() {
        let unsupported: Vec<&str> = Hook::ALL
            .iter()
            .filter(|h| !supported(**h))
            .map(|h| h.name())
            .collect();
        assert!(
            unsupported.is_empty(),
            "`chathooks new` cannot write {unsupported:?}: give them snippets"
        );
        for lang in Lang::ALL {
            let hooks: Vec<Hook> = Hook::ALL.to_vec();
            let files = render("demo", lang, &hooks, None);
            let files = match files {
                Ok(files) => files,
                Err(err) => panic!("{}: {err:#}", lang.name()),
            };
            let cases = files
                .iter()
                .find(|f| f.path == "cases.json")
                .map(|f| &f.text);
            let parsed = cases.map(|text| crate::cases::parse(text));
            assert!(matches!(parsed, Some(Ok(_))), "{}: {parsed:?}", lang.name());
        }
    }

    /// The starters carry the whole WIT package, and name the toolchain versions the build script pins.
    #[test]
    fn wit_files_and_pins_match_the_repository() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut on_disk: Vec<String> = std::fs::read_dir(&wit)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".wit"))
                    .collect()
            })
            .unwrap_or_default();
        on_disk.sort();
        let mut embedded: Vec<String> = WIT_FILES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "wit/ and the WIT files `chathooks new` copies into starters differ: update WIT_FILES in \
             host/src/cli/new/render.rs"
        );

        let script = include_str!("../../../../scripts/build-plugins.sh");
        assert!(script.contains(&format!(
            "COMPONENTIZE_PY_VERSION={COMPONENTIZE_PY_VERSION}"
        )));
        assert!(script.contains(&format!("WIT_BINDGEN_VERSION={WIT_BINDGEN_VERSION}")));
        assert!(script.contains(&format!("WASM_TOOLS_VERSION={WASM_TOOLS_VERSION}")));
        let package = include_str!("../../../../plugins-examples/js/package.json");
        assert!(package.contains(&format!("\"@bytecodealliance/jco\": \"{JCO_VERSION}\"")));
    }
}
