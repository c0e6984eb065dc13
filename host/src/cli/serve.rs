//! `chathooks serve`: run the chat server until SIGINT or SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{ADMIN_KEY_FILE, AdminKey, Config, ServeArgs};
use crate::server::{self, shutdown_signal};
use crate::store::data_lock::DataLock;

/// Resolves the configuration, starts the server and serves until SIGINT or SIGTERM; then stops
/// accepting, finishes in-flight requests, stops the dispatcher (finishing its calls in flight) and
/// closes the database.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    // Before anything touches the folder (the admin key is generated there on a first start).
    let lock = DataLock::acquire(&config.data_dir)?;
    let admin_key = AdminKey::load_or_create(&config)?;
    if admin_key.generated {
        println!(
            "generated an admin key (kept in {}; shown only this once): {}",
            config.data_dir.join(ADMIN_KEY_FILE).display(),
            admin_key.reveal()
        );
    }
    let running = server::start_locked(&config, admin_key, lock).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    if let Some(node) = &running.state.cluster {
        node.set_http_addr(addr);
    }
    // Installed before the announcement: a SIGTERM right after it is a graceful shutdown.
    let shutdown = shutdown_signal();
    println!("chathooks listening on http://{addr}");
    tracing::info!(
        data = %config.data_dir.display(),
        plugins = %config.plugins_dir.display(),
        "serving on {addr}"
    );
    server::serve(listener, running.state.clone(), shutdown).await?;
    running.finish().await;
    tracing::info!("stopped");
    Ok(())
}
