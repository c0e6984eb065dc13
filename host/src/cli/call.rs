//! `chathooks call <plugin.wasm> <hook> --input <event.json>`: call one hook once and show its answer and
//! what it did (KV writes, log lines, power calls), as `extism call` does for Extism plugins.
//!
//! The event is a case file's `input` (the hook's WIT parameters in snake_case; see the README), read
//! from a file or from stdin (`-`), and converted by the case-file code ([`crate::cases::convert`]): one
//! converter, so what `call` accepts is exactly what a case file accepts. The plugin runs as
//! `chathooks test` runs it: its manifest's limits, config and grants, an in-memory KV store, and powers
//! recorded rather than carried out.

use super::{Tool, ToolArgs};
use crate::cases::{convert, powers::CasePowers};
use crate::plugins::manifest::PluginSettings;
use crate::plugins::powers::Recorded;
use crate::plugins::runtime::plugin_name;
use crate::plugins::{CallError, Hook, HookOutput, LogLine, Plugin};
use anyhow::Context;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `chathooks call`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// The hook's WIT name, such as `before-message-sent`, or `on-timer` (input `{"name", "payload"}`).
    pub hook: String,
    /// The event: a JSON file holding the hook's parameters, as a case's `input`; `-` reads stdin.
    #[arg(long, short, value_name = "FILE")]
    pub input: PathBuf,
    /// For after-hooks: the event context as JSON, `{"event_id", "attempt", "at"}` [default: 1, 1, 0].
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// A config value over the manifest's (`KEY=VALUE`; the value is JSON if it parses as JSON, else a
    /// string). Repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// A KV key to store before the call (`KEY=VALUE`, the value as JSON if it parses, else a string).
    /// Repeatable.
    #[arg(long = "kv", value_name = "KEY=VALUE")]
    pub kv: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// What a call returned and did.
#[derive(Debug)]
struct Outcome {
    hook: String,
    elapsed: Duration,
    answer: Result<HookOutput, CallError>,
    kv: BTreeMap<String, Option<Value>>,
    logs: Vec<LogLine>,
    powers: Vec<Recorded>,
}

/// Call the hook and print what happened. Returns whether the call succeeded (a rejecting decision is a
/// success; a trap or an after-hook's error is not). A wrong hook name or an event that does not fit the
/// hook is an error.
pub fn call(args: &CallArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let input = read_input(&args.input)?;
    let settings = PluginSettings::for_wasm(&args.plugin).map_err(anyhow::Error::msg)?;
    let bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read {}", args.plugin.display()))?;
    let name = plugin_name(&args.plugin);
    let (tool, plugin) = Tool::load(&args.tools, &name, &bytes, &settings)?
        .with_context(|| format!("cannot load {}", args.plugin.display()))?;
    check_hook(&plugin, &args.hook)?;
    let plugin = configure(&plugin, &args.config)?;
    let seeds = pairs("--kv", &args.kv)?;
    for (key, value) in &seeds {
        tool.runtime
            .kv()
            .set(&name, key, value.to_string().as_bytes(), None)
            .with_context(|| format!("storing --kv {key}"))?;
    }
    tool.logs.take();
    let started = Instant::now();
    let answer = if args.hook == "on-timer" {
        let field = |key: &str| match input.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(anyhow::anyhow!(
                "the input does not fit on-timer: input.{key}: expected a string, found {other}"
            )),
        };
        let (timer, payload) = (field("name")?, field("payload")?);
        plugin.call_timer(&timer, &payload).map(HookOutput::Done)
    } else {
        let context = match &args.context {
            Some(text) => Some(serde_json::from_str(text).context("--context is not JSON")?),
            None => None,
        };
        let context = convert::context(context.as_ref(), "context", 1)?;
        let fit =
            |e: convert::InputError| anyhow::anyhow!("the input does not fit {}: {e}", args.hook);
        let call = convert::hook_call(&args.hook, &input, context).map_err(fit)?;
        if let Some((conversation, participants)) =
            convert::case_participants(&input).map_err(fit)?
        {
            tool.services.set_participants(&conversation, participants);
        }
        plugin.call(&call)
    };
    let elapsed = started.elapsed();
    let outcome = Outcome {
        hook: args.hook.clone(),
        elapsed,
        answer,
        kv: kv_changes(&tool, &name, &seeds)?,
        logs: tool.logs.take(),
        powers: tool.services.take(),
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &outcome.to_json())?;
        writeln!(out)?;
    } else {
        outcome.print(out)?;
    }
    Ok(outcome.succeeded())
}

fn read_input(path: &Path) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the input from stdin")?;
        text
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the input {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "the input {} is not JSON",
            if path == Path::new("-") {
                "(stdin)".to_owned()
            } else {
                path.display().to_string()
            }
        )
    })
}

/// An error naming the plugin's hooks unless it implements `hook`.
fn check_hook(plugin: &Plugin, hook: &str) -> anyhow::Result<()> {
    let mut names: Vec<&str> = plugin.hooks().iter().map(Hook::name).collect();
    if plugin.has_timer() {
        names.push("on-timer");
    }
    if names.contains(&hook) {
        return Ok(());
    }
    let known = Hook::from_name(hook).is_some() || hook == "on-timer";
    let what = if known {
        format!("{} does not implement the hook {hook:?}", plugin.name())
    } else {
        format!("there is no hook {hook:?}")
    };
    anyhow::bail!(
        "{what}; {} implements: {}",
        plugin.name(),
        if names.is_empty() {
            "no hooks".to_owned()
        } else {
            names.join(", ")
        }
    )
}

/// `plugin` with the `--config` values laid over its manifest's.
fn configure(plugin: &Plugin, config: &[String]) -> anyhow::Result<Plugin> {
    if config.is_empty() {
        return Ok(plugin.clone());
    }
    let values: Map<String, Value> = pairs("--config", config)?.into_iter().collect();
    let powers = CasePowers {
        config: Some(&values),
        grants: None,
    }
    .apply(plugin.powers())
    .map_err(|e| anyhow::anyhow!("--config: {e}"))?;
    plugin
        .reconfigured(powers)
        .map_err(|e| anyhow::anyhow!("--config: {e}"))
}

/// `KEY=VALUE` arguments, each value as JSON if it parses, else as a string.
fn pairs(flag: &str, args: &[String]) -> anyhow::Result<Vec<(String, Value)>> {
    args.iter()
        .map(|arg| {
            let (key, value) = arg
                .split_once('=')
                .filter(|(key, _)| !key.is_empty())
                .with_context(|| format!("{flag} {arg:?}: expected KEY=VALUE"))?;
            let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
            Ok((key.to_owned(), value))
        })
        .collect()
}

/// The keys the call changed: their new value, or `None` for a deleted key.
fn kv_changes(
    tool: &Tool,
    name: &str,
    seeds: &[(String, Value)],
) -> anyhow::Result<BTreeMap<String, Option<Value>>> {
    let mut before: BTreeMap<String, Value> = seeds.iter().cloned().collect();
    let mut changes = BTreeMap::new();
    for (key, bytes) in tool
        .runtime
        .kv()
        .dump(name)
        .context("reading the KV store")?
    {
        let value = convert::kv_value_to_json(&bytes);
        if before.remove(&key).as_ref() != Some(&value) {
            changes.insert(key, Some(value));
        }
    }
    changes.extend(before.into_keys().map(|key| (key, None)));
    Ok(changes)
}

impl Outcome {
    fn succeeded(&self) -> bool {
        matches!(
            self.answer,
            Ok(HookOutput::Decision(_)) | Ok(HookOutput::Done(Ok(())))
        )
    }

    fn answer_json(&self) -> Value {
        match &self.answer {
            Ok(HookOutput::Decision(decision)) => {
                json!({ "decision": convert::decision_to_json(decision) })
            }
            Ok(HookOutput::Done(Ok(()))) => json!({ "ok": true }),
            Ok(HookOutput::Done(Err(reason))) => json!({ "error": reason }),
            Err(err) => json!({ "failed": err.to_string() }),
        }
    }

    fn to_json(&self) -> Value {
        let logs: Vec<Value> = self
            .logs
            .iter()
            .map(|l| json!({ "level": l.level.as_str(), "message": l.message }))
            .collect();
        json!({
            "hook": self.hook,
            "answer": self.answer_json(),
            "micros": self.elapsed.as_micros() as u64,
            "kv": self.kv,
            "logs": logs,
            "powers": self.powers,
        })
    }

    fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let answer = match &self.answer {
            Ok(HookOutput::Decision(decision)) => convert::decision_to_json(decision).to_string(),
            Ok(HookOutput::Done(Ok(()))) => "ok".to_owned(),
            Ok(HookOutput::Done(Err(reason))) => format!("error: {reason}"),
            Err(err) => format!("failed: {err}"),
        };
        writeln!(out, "{} -> {answer}  ({:.2?})", self.hook, self.elapsed)?;
        if self.kv.is_empty() {
            writeln!(out, "kv:     no changes")?;
        } else {
            writeln!(out, "kv:")?;
            for (key, value) in &self.kv {
                match value {
                    Some(value) => writeln!(out, "  set    {key} = {value}")?,
                    None => writeln!(out, "  delete {key}")?,
                }
            }
        }
        if self.logs.is_empty() {
            writeln!(out, "logs:   none")?;
        } else {
            writeln!(out, "logs:")?;
            for line in &self.logs {
                writeln!(out, "  [{}] {}", line.level.as_str(), line.message)?;
            }
        }
        if self.powers.is_empty() {
            writeln!(out, "powers: none")?;
        } else {
            writeln!(out, "powers:")?;
            for power in &self.powers {
                let text = serde_json::to_string(power).unwrap_or_else(|e| e.to_string());
                writeln!(out, "  {text}")?;
            }
        }
        Ok(())
    }
}
