//! The admin view of a cluster (`GET /v1/admin/cluster`): its nodes from their heartbeats, which node
//! holds the sequencer role, and how far each plugin of the catalog has rolled out ("3/3 nodes on
//! abc123"). Built from the rows of `nodes` and `plugin_catalog` by [`ClusterView::build`], a pure
//! function.

use serde::Serialize;
use utoipa::ToSchema;

use super::nodes::ALIVE_WITHIN;
use crate::store::postgres::catalog::CatalogEntry;
use crate::store::postgres::nodes::{NodePlugin, NodeRow};

/// How many hex digits of a SHA-256 the summaries show.
const SHORT_HASH: usize = 12;

/// A cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClusterView {
    /// The cluster's name (`--cluster-name`).
    pub cluster: String,
    /// The id of the node that answered.
    pub node_id: String,
    /// The live node holding the sequencer role, if one says so in its heartbeat.
    pub sequencer: Option<String>,
    /// Every node with a heartbeat row, by id (a node starting drops rows silent for more than a day).
    pub nodes: Vec<NodeView>,
    /// Every plugin of the catalog, by name, with how many live nodes run the catalog's version.
    pub plugins: Vec<CatalogPluginView>,
}

/// One node, from its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NodeView {
    /// The node's id.
    pub node_id: String,
    /// Where it serves HTTP (`host:port`; empty before it listens).
    pub http_addr: String,
    /// The chathooks version it runs.
    pub version: String,
    /// When it started, in milliseconds since the epoch (its own clock).
    pub started_at: i64,
    /// Milliseconds since its last heartbeat (database clock).
    pub heartbeat_age_ms: i64,
    /// Whether its last heartbeat is recent (within 5 s).
    pub alive: bool,
    /// Whether it said it holds the sequencer role.
    pub is_sequencer: bool,
    /// The plugins it runs, with the SHA-256 of the version each.
    pub plugins: Vec<NodePlugin>,
}

/// One plugin of the catalog and its rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CatalogPluginView {
    /// The plugin's name.
    pub name: String,
    /// The SHA-256 of the catalog's version.
    pub sha256: String,
    /// The catalog row's generation (grows with every change).
    pub generation: i64,
    /// When the catalog's version was pushed, in milliseconds since the epoch.
    pub updated_at: i64,
    /// The component's size in bytes.
    pub size: i64,
    /// Live nodes running the catalog's version.
    pub nodes_on_catalog: usize,
    /// Live nodes.
    pub nodes_alive: usize,
    /// Live nodes not running the catalog's version (an older one, a failed load, or none yet).
    pub lagging: Vec<String>,
    /// For people: `3/3 nodes on abc123def456`.
    pub summary: String,
}

impl ClusterView {
    /// The view of `cluster` from node `node_id`, given the cluster's node rows and catalog.
    pub fn build(
        cluster: &str,
        node_id: &str,
        rows: Vec<NodeRow>,
        catalog: Vec<CatalogEntry>,
    ) -> ClusterView {
        let alive_ms = i64::try_from(ALIVE_WITHIN.as_millis()).unwrap_or(i64::MAX);
        let nodes: Vec<NodeView> = rows
            .into_iter()
            .map(|row| NodeView {
                alive: row.age_ms <= alive_ms,
                node_id: row.heartbeat.node_id,
                http_addr: row.heartbeat.http_addr,
                version: row.heartbeat.version,
                started_at: row.heartbeat.started_at,
                heartbeat_age_ms: row.age_ms.max(0),
                is_sequencer: row.heartbeat.is_sequencer,
                plugins: row.heartbeat.plugins,
            })
            .collect();
        let live: Vec<&NodeView> = nodes.iter().filter(|n| n.alive).collect();
        let sequencer = live
            .iter()
            .find(|n| n.is_sequencer)
            .map(|n| n.node_id.clone());
        let plugins = catalog
            .into_iter()
            .map(|entry| {
                let runs = |n: &&&NodeView| {
                    n.plugins
                        .iter()
                        .any(|p| p.name == entry.name && p.sha256 == entry.sha256)
                };
                let on = live.iter().filter(runs).count();
                let lagging = live
                    .iter()
                    .filter(|n| !runs(n))
                    .map(|n| n.node_id.clone())
                    .collect();
                let short: String = entry.sha256.chars().take(SHORT_HASH).collect();
                CatalogPluginView {
                    summary: format!("{on}/{} nodes on {short}", live.len()),
                    name: entry.name,
                    sha256: entry.sha256,
                    generation: entry.generation,
                    updated_at: entry.updated_at,
                    size: entry.size,
                    nodes_on_catalog: on,
                    nodes_alive: live.len(),
                    lagging,
                }
            })
            .collect();
        ClusterView {
            cluster: cluster.to_owned(),
            node_id: node_id.to_owned(),
            sequencer,
            nodes,
            plugins,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::nodes::Heartbeat;

    fn row(id: &str, age_ms: i64, sequencer: bool, plugins: &[(&str, &str)]) -> NodeRow {
        NodeRow {
            heartbeat: Heartbeat {
                node_id: id.to_owned(),
                started_at: 1,
                http_addr: format!("{id}:80"),
                version: "1".to_owned(),
                plugins: plugins
                    .iter()
                    .map(|(name, sha256)| NodePlugin {
                        name: (*name).to_owned(),
                        sha256: (*sha256).to_owned(),
                    })
                    .collect(),
                is_sequencer: sequencer,
            },
            heartbeat_at: 0,
            age_ms,
            backend_pid: 1,
        }
    }

    fn entry(name: &str, sha256: &str) -> CatalogEntry {
        CatalogEntry {
            name: name.to_owned(),
            sha256: sha256.to_owned(),
            manifest: None,
            generation: 7,
            size: 10,
            updated_at: 0,
        }
    }

    #[test]
    fn counts_live_nodes_on_the_catalogs_version_and_names_the_others() {
        let v2 = "bbbbbbbbbbbbbbbbbbbb";
        let view = ClusterView::build(
            "blue",
            "n1",
            vec![
                row("n1", 100, false, &[("echo", v2)]),
                row("n2", 900, true, &[("echo", "aaaa")]),
                row("n3", 0, false, &[]),
                // Dead: neither counted nor the sequencer, whatever it last said.
                row("n4", 60_000, true, &[("echo", v2)]),
            ],
            vec![entry("echo", v2)],
        );
        assert_eq!(view.sequencer.as_deref(), Some("n2"));
        let alive: Vec<bool> = view.nodes.iter().map(|n| n.alive).collect();
        assert_eq!(alive, [true, true, true, false]);
        let echo = &view.plugins[0];
        assert_eq!(
            (
                echo.nodes_on_catalog,
                echo.nodes_alive,
                echo.lagging.clone()
            ),
            (1, 3, vec!["n2".to_owned(), "n3".to_owned()])
        );
        assert_eq!(echo.summary, "1/3 nodes on bbbbbbbbbbbb");
    }
}
