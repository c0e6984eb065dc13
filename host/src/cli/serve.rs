//! `chathooks serve`: run the chat server until SIGINT or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{AdminKey, Config, ServeArgs};
use crate::server::{AppState, serve as serve_http, shutdown_signal};
use crate::store::Db;

/// Resolves the configuration, starts the server and serves until a shutdown signal; then finishes
/// in-flight requests and flushes before returning.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data folder {}", config.data_dir.display()))?;
    let admin_key = AdminKey::load_or_create(&config)?;
    if admin_key.generated {
        println!(
            "generated an admin key (kept in {}; shown only this once): {}",
            config
                .data_dir
                .join(crate::config::ADMIN_KEY_FILE)
                .display(),
            admin_key.reveal()
        );
    }
    let db_path = config.chat_db_path();
    let db = Db::open_with(&db_path, config.durability)
        .with_context(|| format!("opening the database {}", db_path.display()))?;
    let state = AppState::new(Arc::new(db), admin_key, config.body_limit);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("chathooks listening on http://{addr}");
    tracing::info!(data = %config.data_dir.display(), plugins = %config.plugins_dir.display(), "serving on {addr}");
    serve_http(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
