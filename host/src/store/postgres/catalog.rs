//! Cluster mode's plugin catalog (SCALE-OUT.md 2.8): the plugins every node of a cluster runs, kept in
//! the shared database (table `plugin_catalog`, schema version 4).
//!
//! `chathooks plugins push` and publisher nodes write it; every node lists it every few seconds, fetches
//! the blobs that changed and loads them ([`crate::cluster::catalog`]). The catalog is content-addressed:
//! putting the bytes and manifest a plugin already has changes nothing, so several publishers with the
//! same files, or a push repeated by CI, cost one comparison and no node reloads anything.
//!
//! Every change takes the next value of the sequence `plugin_catalog_generation`, so a row's
//! `generation` grows with each change (a plugin removed and pushed again included) and the newest
//! generation of a cluster says whether anything changed since a node last looked.
//!
//! The functions take a [`PgPool`] and are async, for tools with a runtime of their own (the CLI); a
//! server's [`PgDb`] runs the same ones on its backend runtime ([`PgDb::put_plugin`] and the others), so
//! they can be awaited from any async code.

use std::future::Future;

use super::connect::PgPool;
use super::db::PgDb;
use super::error::{PgError, Result};
use crate::plugins::cache::content_hash;

/// The database clock in milliseconds since the epoch, as SQL.
pub(super) const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// One plugin of the catalog, without its bytes: what nodes poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The plugin's name (its file is `<name>.wasm`).
    pub name: String,
    /// The component's SHA-256, lower-case hex: the hash the registry reports for it.
    pub sha256: String,
    /// The manifest's text (`<name>.toml`), if it has one.
    pub manifest: Option<String>,
    /// Grows with every change of the catalog (see the module docs).
    pub generation: i64,
    /// The component's size in bytes.
    pub size: i64,
    /// When it last changed, in milliseconds since the epoch (database clock).
    pub updated_at: i64,
}

/// One plugin of the catalog with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogBlob {
    /// The plugin's name.
    pub name: String,
    /// The component's SHA-256 as stored.
    pub sha256: String,
    /// The component.
    pub wasm: Vec<u8>,
    /// The manifest's text, if any.
    pub manifest: Option<String>,
    /// The row's generation.
    pub generation: i64,
}

/// What [`put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The plugin was not in the catalog; it is now, with this generation.
    Added {
        /// The row's generation.
        generation: i64,
    },
    /// New bytes or a new manifest replaced the catalog's.
    Updated {
        /// The row's new generation.
        generation: i64,
    },
    /// The catalog already had these bytes and this manifest: nothing changed.
    Unchanged {
        /// The row's generation, as it was.
        generation: i64,
    },
}

impl Put {
    /// Whether the catalog changed.
    pub fn changed(&self) -> bool {
        !matches!(self, Put::Unchanged { .. })
    }

    /// The row's generation afterwards.
    pub fn generation(&self) -> i64 {
        match *self {
            Put::Added { generation }
            | Put::Updated { generation }
            | Put::Unchanged { generation } => generation,
        }
    }
}

/// Puts `wasm` (with its manifest text, if any) into `cluster`'s catalog under `name`, unless the catalog
/// already has exactly these bytes and manifest. The caller checks that `wasm` is a component first.
pub async fn put(
    pool: &PgPool,
    cluster: &str,
    name: &str,
    wasm: &[u8],
    manifest: Option<&str>,
) -> Result<Put> {
    let sha256 = content_hash(wasm);
    let client = pool.get().await?;
    // Compared first, so an unchanged push does not send the bytes (up to megabytes) at all.
    let current = client
        .query_opt(
            "SELECT sha256, manifest, generation FROM plugin_catalog
             WHERE cluster = $1 AND name = $2",
            &[&cluster, &name],
        )
        .await?;
    if let Some(row) = &current {
        let (stored, stored_manifest): (String, Option<String>) = (row.get(0), row.get(1));
        if stored == sha256 && stored_manifest.as_deref() == manifest {
            return Ok(Put::Unchanged {
                generation: row.get(2),
            });
        }
    }
    // The WHERE makes a concurrent identical put a no-op too (no row comes back).
    let sql = format!(
        "INSERT INTO plugin_catalog (cluster, name, sha256, wasm, manifest, generation, updated_at)
         VALUES ($1, $2, $3, $4, $5, nextval('plugin_catalog_generation'), {NOW_MS})
         ON CONFLICT (cluster, name) DO UPDATE
           SET sha256 = EXCLUDED.sha256, wasm = EXCLUDED.wasm, manifest = EXCLUDED.manifest,
               generation = EXCLUDED.generation, updated_at = EXCLUDED.updated_at
           WHERE plugin_catalog.sha256 IS DISTINCT FROM EXCLUDED.sha256
              OR plugin_catalog.manifest IS DISTINCT FROM EXCLUDED.manifest
         RETURNING generation, (xmax = 0) AS inserted"
    );
    let row = client
        .query_opt(&sql, &[&cluster, &name, &sha256, &wasm, &manifest])
        .await?;
    match row {
        Some(row) if row.get::<_, bool>(1) => Ok(Put::Added {
            generation: row.get(0),
        }),
        Some(row) => Ok(Put::Updated {
            generation: row.get(0),
        }),
        None => {
            let row = client
                .query_one(
                    "SELECT generation FROM plugin_catalog WHERE cluster = $1 AND name = $2",
                    &[&cluster, &name],
                )
                .await?;
            Ok(Put::Unchanged {
                generation: row.get(0),
            })
        }
    }
}

/// Removes `name` from `cluster`'s catalog; false if it was not there. Nodes unload it at their next look.
pub async fn remove(pool: &PgPool, cluster: &str, name: &str) -> Result<bool> {
    let client = pool.get().await?;
    let removed = client
        .execute(
            "DELETE FROM plugin_catalog WHERE cluster = $1 AND name = $2",
            &[&cluster, &name],
        )
        .await?;
    Ok(removed > 0)
}

/// `cluster`'s catalog without the bytes, by name.
pub async fn list(pool: &PgPool, cluster: &str) -> Result<Vec<CatalogEntry>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT name, sha256, manifest, generation, octet_length(wasm)::bigint, updated_at
             FROM plugin_catalog WHERE cluster = $1 ORDER BY name",
            &[&cluster],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| CatalogEntry {
            name: row.get(0),
            sha256: row.get(1),
            manifest: row.get(2),
            generation: row.get(3),
            size: row.get(4),
            updated_at: row.get(5),
        })
        .collect())
}

/// One plugin of `cluster`'s catalog with its bytes; `None` if it is not there (removed meanwhile).
pub async fn fetch(pool: &PgPool, cluster: &str, name: &str) -> Result<Option<CatalogBlob>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT name, sha256, wasm, manifest, generation FROM plugin_catalog
             WHERE cluster = $1 AND name = $2",
            &[&cluster, &name],
        )
        .await?;
    Ok(row.map(|row| CatalogBlob {
        name: row.get(0),
        sha256: row.get(1),
        wasm: row.get(2),
        manifest: row.get(3),
        generation: row.get(4),
    }))
}

impl PgDb {
    /// Runs `query` over this database's pool on the backend's runtime (where the pool's connections
    /// live) and waits for it, from any async code: a current-thread runtime included, unlike the
    /// blocking store calls.
    pub async fn run_async<T, Fut>(&self, query: impl FnOnce(PgPool) -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.handle()
            .spawn(query(self.pool().clone()))
            .await
            .map_err(|err| PgError::Pool {
                setting: self.location().to_owned(),
                reason: format!("the query's task ended early: {err}"),
            })?
    }

    /// [`put`] on this database.
    pub async fn put_plugin(
        &self,
        cluster: &str,
        name: &str,
        wasm: Vec<u8>,
        manifest: Option<String>,
    ) -> Result<Put> {
        let (cluster, name) = (cluster.to_owned(), name.to_owned());
        self.run_async(|pool| async move {
            put(&pool, &cluster, &name, &wasm, manifest.as_deref()).await
        })
        .await
    }

    /// [`remove`] on this database.
    pub async fn remove_plugin(&self, cluster: &str, name: &str) -> Result<bool> {
        let (cluster, name) = (cluster.to_owned(), name.to_owned());
        self.run_async(|pool| async move { remove(&pool, &cluster, &name).await })
            .await
    }

    /// [`list`] on this database.
    pub async fn plugin_catalog(&self, cluster: &str) -> Result<Vec<CatalogEntry>> {
        let cluster = cluster.to_owned();
        self.run_async(|pool| async move { list(&pool, &cluster).await })
            .await
    }

    /// [`fetch`] on this database.
    pub async fn fetch_plugin(&self, cluster: &str, name: &str) -> Result<Option<CatalogBlob>> {
        let (cluster, name) = (cluster.to_owned(), name.to_owned());
        self.run_async(|pool| async move { fetch(&pool, &cluster, &name).await })
            .await
    }
}
