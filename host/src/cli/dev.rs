//! `chathooks dev <plugin-folder>`: the inner loop of writing a plugin, as `spin watch` does for Spin.
//!
//! Each round: run the folder's build script (`build.sh`, as `chathooks new` writes one per language),
//! run its case file (`cases.json`) against the component it built, and only when both succeed copy the
//! component (and its manifest, `<name>.toml`, if one is beside it) into the plugins folder, where a
//! running server's watcher hot-reloads it. A failed build or a failed case leaves the plugin that is
//! serving alone. Each step prints its time.
//!
//! Source changes are debounced ([`DevArgs::debounce_ms`]); the build's own output (`*.wasm`, `target/`,
//! `gen/`, `node_modules/`, `__pycache__/`, hidden folders) is not a change, so a build never triggers
//! the next one.

mod watch;

use super::ToolArgs;
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

/// `chathooks dev`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// The plugin's folder (with `build.sh` and `cases.json`, as `chathooks new` makes it).
    pub folder: PathBuf,
    /// The plugins folder of a running server, to drop each good build into.
    #[arg(long, value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Start a server (`chathooks serve`) on the plugins folder [default: <folder>/.chathooks/plugins]
    /// and stop it on exit.
    // `--help` text, which clap prints as written: backticks around `<folder>` would show there.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long)]
    pub serve: bool,
    /// With `--serve`: the address the server listens on [default: `chathooks serve`'s, 127.0.0.1:8787].
    #[arg(long, value_name = "ADDR", requires = "serve")]
    pub listen: Option<String>,
    /// The build command, run by `sh -c` in the folder [default: ./build.sh].
    #[arg(long, value_name = "COMMAND")]
    pub build: Option<String>,
    /// The case file [default: <folder>/cases.json, skipped if absent].
    // `--help` text, which clap prints as written: backticks around `<folder>` would show there.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "FILE")]
    pub cases: Option<PathBuf>,
    /// Quiet time after a change before rebuilding, in milliseconds.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub debounce_ms: u64,
    /// Build, test and deploy once, then exit (its status says whether it worked).
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// How a round ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Built, passed and copied to this path.
    Deployed(PathBuf),
    /// Built and passed; there is no plugins folder to copy to.
    Passed(PathBuf),
    /// The build failed.
    BuildFailed,
    /// A case failed (or the component did not load).
    TestsFailed,
}

/// Watch, rebuild, test and deploy until interrupted (or once, with `--once`). Returns whether the last
/// round deployed.
pub fn dev(args: &DevArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let folder = args
        .folder
        .canonicalize()
        .with_context(|| format!("no plugin folder {}", args.folder.display()))?;
    let plugins_dir = match (&args.plugins_dir, args.serve) {
        (Some(dir), _) => Some(dir.clone()),
        (None, true) => Some(folder.join(".chathooks").join("plugins")),
        (None, false) => None,
    };
    if let Some(dir) = &plugins_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the plugins folder {}", dir.display()))?;
    }
    let _server = match (&plugins_dir, args.serve) {
        (Some(dir), true) => Some(Server::start(&folder, dir, args.listen.as_deref())?),
        _ => None,
    };
    let mut last = round(args, &folder, plugins_dir.as_deref(), out)?;
    if args.once {
        return Ok(matches!(last, Round::Deployed(_) | Round::Passed(_)));
    }
    let changes = watch::Changes::watch(&folder)?;
    writeln!(out, "watching {} (Ctrl-C to stop)", folder.display())?;
    let debounce = Duration::from_millis(args.debounce_ms);
    while let Some(changed) = changes.next_batch(debounce) {
        writeln!(out, "changed: {}", changed.display())?;
        last = round(args, &folder, plugins_dir.as_deref(), out)?;
        // What the build wrote is filtered out; anything else saved meanwhile starts the next round.
    }
    Ok(matches!(last, Round::Deployed(_) | Round::Passed(_)))
}

/// One round: build, test, deploy.
pub fn round(
    args: &DevArgs,
    folder: &Path,
    plugins_dir: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<Round> {
    let started = Instant::now();
    let build = args.build.as_deref().unwrap_or("./build.sh");
    let status = Command::new("sh")
        .arg("-c")
        .arg(build)
        .current_dir(folder)
        .status()
        .with_context(|| format!("running {build}"))?;
    if !status.success() {
        writeln!(
            out,
            "build failed ({status}) after {:.2?}; the deployed plugin is unchanged",
            started.elapsed()
        )?;
        return Ok(Round::BuildFailed);
    }
    let wasm = built_component(folder, started_at(started))?;
    writeln!(out, "built {} in {:.2?}", wasm.display(), started.elapsed())?;

    let cases = args
        .cases
        .clone()
        .unwrap_or_else(|| folder.join("cases.json"));
    if cases.exists() {
        let started = Instant::now();
        let passed = match super::test(&wasm, &cases, &args.tools, out) {
            Ok(passed) => passed,
            Err(err) => {
                writeln!(out, "error: {err:#}")?;
                false
            }
        };
        if !passed {
            writeln!(
                out,
                "tests failed after {:.2?}; the deployed plugin is unchanged",
                started.elapsed()
            )?;
            return Ok(Round::TestsFailed);
        }
        writeln!(out, "tested in {:.2?}", started.elapsed())?;
    } else {
        writeln!(out, "no case file ({}): not testing", cases.display())?;
    }

    let Some(dir) = plugins_dir else {
        return Ok(Round::Passed(wasm));
    };
    let started = Instant::now();
    let target = deploy(&wasm, dir)?;
    writeln!(
        out,
        "deployed {} in {:.2?}",
        target.display(),
        started.elapsed()
    )?;
    Ok(Round::Deployed(target))
}

fn started_at(started: Instant) -> SystemTime {
    SystemTime::now() - started.elapsed()
}

/// The component the build wrote: the newest `.wasm` file in the folder itself.
fn built_component(folder: &Path, since: SystemTime) -> anyhow::Result<PathBuf> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(folder).context("listing the plugin folder")? {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "wasm") {
            continue;
        }
        let modified = std::fs::metadata(&path)?.modified()?;
        if newest.as_ref().is_none_or(|(m, _)| modified > *m) {
            newest = Some((modified, path));
        }
    }
    match newest {
        Some((modified, path)) => {
            if modified + Duration::from_secs(1) < since {
                tracing::warn!("{} is older than this build", path.display());
            }
            Ok(path)
        }
        None => anyhow::bail!("the build wrote no .wasm file into {}", folder.display()),
    }
}

/// Copies `wasm` (and its manifest beside it) into `dir`, each by write-then-rename so the server's
/// watcher never sees half a file. The manifest goes first: the component's arrival is the reload.
fn deploy(wasm: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = wasm.with_extension("toml");
    if manifest.exists() {
        copy_atomic(&manifest, dir)?;
    }
    copy_atomic(wasm, dir)
}

fn copy_atomic(file: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let name = file.file_name().context("a file has a name")?;
    let target = dir.join(name);
    let tmp = dir.join(format!(".{}.dev-tmp", name.to_string_lossy()));
    std::fs::copy(file, &tmp)
        .with_context(|| format!("copying {} to {}", file.display(), tmp.display()))?;
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("moving {} into place", target.display()))?;
    Ok(target)
}

/// A `chathooks serve` child on the plugins folder, stopped when dropped.
struct Server(Child);

impl Server {
    fn start(folder: &Path, plugins: &Path, listen: Option<&str>) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("finding the chathooks binary")?;
        let mut command = Command::new(exe);
        stop_with_parent(&mut command);
        command
            .arg("serve")
            .arg("--plugins-dir")
            .arg(plugins)
            .arg("--data-dir")
            .arg(folder.join(".chathooks").join("data"));
        if let Some(listen) = listen {
            command.args(["--listen", listen]);
        }
        let child = command.spawn().context("starting chathooks serve")?;
        Ok(Server(child))
    }
}

/// On Linux, the server gets SIGTERM when `dev` dies, however it dies (a `kill` skips `Drop`).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn stop_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only makes one system call
    // (prctl), which is async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_command: &mut Command) {}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
