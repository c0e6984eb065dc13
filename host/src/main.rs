//! The `chathooks` binary: a thin shell over the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The server's allocator (see `chathooks::allocator`).
#[global_allocator]
static ALLOCATOR: chathooks::allocator::Allocator = chathooks::allocator::Allocator;

/// chathooks: a chat server extended by WebAssembly hooks.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the chat server: REST + WebSocket API, plugins from the plugins folder, data in the data folder.
    Serve(Box<chathooks::config::ServeArgs>),
    /// Create or upgrade the database schema and print its version: PostgreSQL with
    /// `--database postgres://...`, else the SQLite file (`<data-dir>/chat.db` by default).
    Migrate(chathooks::cli::MigrateArgs),
    /// Manage a cluster's plugin catalog: push, remove, list (`--database postgres://...`).
    #[command(subcommand)]
    Plugins(chathooks::cli::PluginsCommand),
    /// Check that a plugin loads: print its WIT version and the hooks it implements, or why it cannot load.
    Check {
        /// The plugin component (`.wasm`).
        plugin: PathBuf,
        #[command(flatten)]
        tools: chathooks::cli::ToolArgs,
    },
    /// Run a case file against a plugin: pass/fail per case and an `N passed, M failed` summary.
    Test {
        /// The plugin component (`.wasm`).
        plugin: PathBuf,
        /// The case file (JSON); see the README for its format.
        cases: PathBuf,
        #[command(flatten)]
        tools: chathooks::cli::ToolArgs,
    },
    /// Call one hook of a plugin with an event from a JSON file (or `-` for stdin) and print its answer
    /// and what it did: KV writes, log lines, power calls.
    Call(chathooks::cli::CallArgs),
    /// Watch a plugin's sources: rebuild with its build script, run its case file, and on success drop
    /// the new component into a plugins folder (`--plugins-dir`) or a server it starts (`--serve`).
    Dev(chathooks::cli::DevArgs),
    /// Write a starter plugin that builds (`./build.sh`) and passes its case file (`cases.json`).
    New(chathooks::cli::NewPlugin),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut out = std::io::stdout();
    let result = match &cli.command {
        Command::Serve(args) => chathooks::cli::serve(args).map(|()| true),
        Command::Migrate(args) => chathooks::cli::migrate(args, &mut out),
        Command::Plugins(command) => chathooks::cli::plugins(command, &mut out),
        Command::Check { plugin, tools } => chathooks::cli::check(plugin, tools, &mut out),
        Command::Test {
            plugin,
            cases,
            tools,
        } => chathooks::cli::test(plugin, cases, tools, &mut out),
        Command::Call(args) => chathooks::cli::call(args, &mut out),
        Command::Dev(args) => chathooks::cli::dev(args, &mut out),
        Command::New(request) => chathooks::cli::new(request, &mut out),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
