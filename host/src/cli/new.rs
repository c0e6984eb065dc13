//! `chathooks new <name> --lang rust|python|js|c [--hooks a,b]`: write a starter plugin that builds with one
//! script and passes its own case file, so an author goes from nothing to a passing `chathooks test` in
//! minutes, in any of the four languages.
//!
//! The files come from `templates/` (compiled in with `include_str!`): per language a source file with
//! slots, one snippet per kind of hook (before/after) and the helpers they share, a build script. The
//! hooks' parameters are read from the WIT (`wit/hooks.wit`, compiled in too), so the generated signatures
//! always match the contract. Python, JavaScript and C starters carry a copy of the WIT package in
//! `wit/deps/chathooks-plugin/`, so they build outside this repository; Rust starters depend on the SDK by
//! version, and `--sdk-path` points that at a local copy (`sdk`). No starter names a path of the machine
//! `chathooks` was built on.
//!
//! Layout: this file has the command (names, hooks, writing the files); `render` turns the templates into
//! a starter's files; `signature` writes a hook's function in each language; `cases` writes its case file;
//! `sdk` is how a Rust starter finds the SDK.

mod cases;
mod render;
mod sdk;
mod signature;

use crate::plugins::Hook;
use anyhow::{Context, bail};
use render::{render, snake, supported};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The hooks a starter implements when `--hooks` is not given: one of each kind.
pub const DEFAULT_HOOKS: &[Hook] = &[Hook::BeforeMessageSent, Hook::AfterMessageSent];

/// Names that would break a generated world, module or crate (WIT keywords, Python's `app` module, Rust's
/// built-in crates).
const RESERVED_NAMES: &[&str] = &[
    "app",
    "as",
    "bool",
    "borrow",
    "char",
    "constructor",
    "enum",
    "export",
    "flags",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "option",
    "own",
    "package",
    "record",
    "resource",
    "result",
    "static",
    "stream",
    "string",
    "tuple",
    "type",
    "use",
    "variant",
    "with",
    "world",
    "plugin",
    "std",
    "core",
    "alloc",
    "test",
];

/// A language a starter can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with the chathooks SDK.
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with jco's QuickJS backend.
    Js,
    /// C with wit-bindgen, clang and wasm-tools.
    C,
}

impl Lang {
    /// Every language, in the order the docs list them.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    /// The name `--lang` takes.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
        }
    }
}

impl FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            "c" => Ok(Lang::C),
            _ => Err(format!("unknown language `{s}`: use rust, python, js or c")),
        }
    }
}

/// What `chathooks new` was asked for (its flags).
#[derive(Debug, Clone, clap::Args)]
pub struct NewPlugin {
    /// The plugin's name: lower-case words joined by dashes, such as `my-filter`. It names the folder, the
    /// WIT world, the crate or package, and the component (`my-filter` → `my_filter.wasm`).
    pub name: String,
    /// The language: rust, python, js or c.
    #[arg(long)]
    pub lang: Lang,
    /// The hooks it implements, comma-separated WIT names [default: before-message-sent,after-message-sent].
    #[arg(long, value_delimiter = ',')]
    pub hooks: Vec<String>,
    /// The folder to create [default: ./<name>].
    // `--help` text, which clap prints as written: backticks around `<name>` would show there.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Rust only: build against this local copy of the SDK (a chathooks checkout, or its `sdk/rust`)
    /// instead of the crates.io release, through `[patch.crates-io]` in the starter's
    /// `.cargo/config.toml`. Ignored for other languages.
    #[arg(long, env = "CHATHOOKS_SDK_PATH", value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

/// Write the starter plugin and say what to do next. Fails, writing nothing, on a bad name, an unknown
/// hook or a folder that exists and is not empty.
pub fn new(request: &NewPlugin, out: &mut dyn Write) -> anyhow::Result<bool> {
    check_name(&request.name)?;
    let hooks = parse_hooks(&request.hooks)?;
    let dir = request
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&request.name));
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = match (&request.sdk_path, request.lang) {
        (Some(dir), Lang::Rust) => Some(sdk::resolve(dir)?),
        _ => None,
    };
    let files = render(&request.name, request.lang, &hooks, sdk.as_deref())?;
    for file in &files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &file.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if file.executable {
            make_executable(&path)?;
        }
    }
    let names: Vec<&str> = hooks.iter().map(|h| h.name()).collect();
    writeln!(
        out,
        "created {} ({} plugin with {})",
        dir.display(),
        request.lang.title(),
        names.join(", ")
    )?;
    for file in &files {
        writeln!(out, "  {}", file.path)?;
    }
    if request.lang == Lang::Rust && sdk.is_none() {
        writeln!(
            out,
            "note: the starter depends on chathooks-sdk {} from crates.io; until it is published there, \
             make it again with --sdk-path <chathooks checkout> (or see its README.md, \"The SDK\")",
            sdk::requirement()
        )?;
    }
    writeln!(out, "next:")?;
    writeln!(out, "  cd {}", dir.display())?;
    writeln!(out, "  ./build.sh")?;
    writeln!(
        out,
        "  chathooks test {}.wasm cases.json",
        snake(&request.name)
    )?;
    Ok(true)
}

/// A plugin name must be a WIT identifier: lower-case words of letters and digits, each starting with a
/// letter, joined by single dashes.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.split('-').all(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !valid {
        bail!(
            "`{name}` is not a valid plugin name: use lower-case words of letters and digits joined by \
             dashes, each word starting with a letter (such as `my-filter` or `stats2`)"
        );
    }
    if RESERVED_NAMES.contains(&name) {
        bail!("`{name}` is a reserved word in WIT, Python or Rust: pick another name");
    }
    Ok(())
}

/// The hooks named in `names` (WIT names), in WIT order, without repeats.
fn parse_hooks(names: &[String]) -> anyhow::Result<Vec<Hook>> {
    if names.is_empty() {
        return Ok(DEFAULT_HOOKS.to_vec());
    }
    let mut hooks = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        match Hook::from_name(name) {
            Some(hook) if supported(hook) => hooks.push(hook),
            Some(_) => bail!("`chathooks new` cannot write the hook `{name}` yet"),
            None => {
                let all: Vec<&str> = Hook::ALL
                    .iter()
                    .filter(|h| supported(**h))
                    .map(|h| h.name())
                    .collect();
                bail!("unknown hook `{name}`; the hooks are: {}", all.join(", "));
            }
        }
    }
    if hooks.is_empty() {
        bail!("--hooks names no hook");
    }
    hooks.sort();
    hooks.dedup();
    Ok(hooks)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_wit_identifiers() {
        for good in ["my-filter", "stats2", "a", "word-filter-v2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "My-Filter",
            "my_filter",
            "2stats",
            "my--filter",
            "-x",
            "x-",
            "filter-2",
            "world",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hooks_are_checked_and_ordered() {
        let hooks = parse_hooks(&["after-message-sent".into(), "before-message-sent".into()]);
        assert_eq!(
            hooks.ok(),
            Some(vec![Hook::BeforeMessageSent, Hook::AfterMessageSent])
        );
        assert_eq!(parse_hooks(&[]).ok(), Some(DEFAULT_HOOKS.to_vec()));
        let err = parse_hooks(&["after-lunch".into()])
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| {
            e.contains("after-lunch")
                && Hook::ALL
                    .iter()
                    .all(|h| e.contains(&format!(" {}", h.name())))
        }));
    }
}
