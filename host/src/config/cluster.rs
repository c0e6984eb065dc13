//! Cluster mode's settings: several `chathooks serve` nodes on one PostgreSQL database, with NATS carrying
//! live events between them (SCALE-OUT.md 2.9).
//!
//! A server is in cluster mode when it is given NATS servers (`--nats`); then its database must be
//! PostgreSQL (a SQLite file cannot be shared between machines). Without `--nats` a server on PostgreSQL
//! runs single-node: it takes the database for itself and refuses a second server.

use serde::Deserialize;

use super::ConfigError;

/// The default cluster name: the NATS subject prefix and the database lock namespace.
pub const DEFAULT_CLUSTER_NAME: &str = "chathooks";

/// Longest node id or cluster name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// The cluster flags of `serve`; each also reads its `CHATHOOKS_*` environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// NATS servers (`nats://127.0.0.1:4222`, comma-separated): run as one node of a cluster on the
    /// PostgreSQL `--database`, with live events crossing nodes through NATS.
    #[arg(long, env = "CHATHOOKS_NATS", value_delimiter = ',')]
    pub nats: Vec<String>,
    /// This node's id in the cluster, stable across restarts (deliveries it had started are taken back
    /// by its next start) and unique among running nodes [default: the host name].
    #[arg(long, env = "CHATHOOKS_NODE_ID")]
    pub node_id: Option<String>,
    /// The cluster's name: NATS subjects and database locks are namespaced by it, so two clusters can
    /// share a NATS server [default: chathooks].
    #[arg(long, env = "CHATHOOKS_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
}

/// The cluster keys of the TOML config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// See [`ClusterArgs::nats`].
    pub nats: Option<Vec<String>>,
    /// See [`ClusterArgs::node_id`].
    pub node_id: Option<String>,
    /// See [`ClusterArgs::cluster_name`].
    pub cluster_name: Option<String>,
}

/// A node's resolved cluster settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The NATS servers, as given.
    pub nats: Vec<String>,
    /// This node's id.
    pub node_id: String,
    /// The cluster's name.
    pub name: String,
}

impl ClusterSettings {
    /// The settings from `args` (winning) and `file`, or `None` when no NATS server is configured (not a
    /// cluster). `database_is_postgres` says whether the chat database is PostgreSQL.
    pub fn resolve(
        args: &ClusterArgs,
        file: ClusterFile,
        database_is_postgres: bool,
    ) -> Result<Option<Self>, ConfigError> {
        let nats: Vec<String> = if args.nats.is_empty() {
            file.nats.unwrap_or_default()
        } else {
            args.nats.clone()
        };
        let nats: Vec<String> = nats
            .into_iter()
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        let node_id = args.node_id.clone().or(file.node_id);
        let name = args.cluster_name.clone().or(file.cluster_name);
        if nats.is_empty() {
            if node_id.is_some() || name.is_some() {
                return Err(ConfigError::Invalid {
                    setting: "nats",
                    message:
                        "node_id and cluster_name only apply to a cluster: give the NATS servers \
                              too (--nats nats://host:4222)"
                            .into(),
                });
            }
            return Ok(None);
        }
        if !database_is_postgres {
            return Err(ConfigError::Invalid {
                setting: "nats",
                message: "a cluster shares one PostgreSQL database, and a SQLite file cannot be \
                          shared: give --database postgres://... too, or leave out --nats"
                    .into(),
            });
        }
        for url in &nats {
            check_nats_url(url)?;
        }
        let node_id = match node_id {
            Some(id) => id,
            None => host_name().ok_or_else(|| ConfigError::Invalid {
                setting: "node_id",
                message: "this machine has no host name to default to: give --node-id".into(),
            })?,
        };
        check_name("node_id", &node_id)?;
        let name = name.unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_owned());
        check_name("cluster_name", &name)?;
        Ok(Some(ClusterSettings {
            nats,
            node_id,
            name,
        }))
    }
}

/// A NATS server address: `nats://host:port`, `tls://host:port` or `host:port`.
fn check_nats_url(url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("nats://")
        .or_else(|| url.strip_prefix("tls://"))
        .unwrap_or(url);
    let valid = !rest.is_empty() && !rest.contains(char::is_whitespace) && !rest.contains("://");
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            setting: "nats",
            message: format!("{url:?} is not a NATS server address (nats://host:4222)"),
        })
    }
}

/// Node ids and cluster names become NATS subject tokens and log fields: letters, digits, `-` and `_`.
pub(crate) fn check_name(setting: &'static str, name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            setting,
            message: format!(
                "{name:?} must be 1 to {MAX_NAME_LEN} letters, digits, '-' or '_' (it names NATS \
                 subjects)"
            ),
        })
    }
}

/// The machine's host name, with any domain cut off and characters a name may not hold turned into `-`.
fn host_name() -> Option<String> {
    let raw = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())?;
    let short = raw.trim().split('.').next().unwrap_or_default();
    let name: String = short
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME_LEN)
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nats: &[&str]) -> ClusterArgs {
        ClusterArgs {
            nats: nats.iter().map(|s| (*s).to_owned()).collect(),
            ..ClusterArgs::default()
        }
    }

    #[test]
    fn no_nats_is_no_cluster_and_cluster_flags_alone_are_refused() {
        let none = ClusterSettings::resolve(&args(&[]), ClusterFile::default(), true);
        assert!(matches!(none, Ok(None)));
        let lone = ClusterArgs {
            node_id: Some("n1".into()),
            ..ClusterArgs::default()
        };
        let err = ClusterSettings::resolve(&lone, ClusterFile::default(), true);
        assert!(err.is_err_and(|e| e.to_string().contains("--nats")));
    }

    #[test]
    fn a_cluster_needs_postgresql() {
        let err = ClusterSettings::resolve(
            &args(&["nats://127.0.0.1:4222"]),
            ClusterFile::default(),
            false,
        );
        assert!(err.is_err_and(|e| e.to_string().contains("SQLite file cannot be shared")));
    }

    #[test]
    fn flags_beat_the_file_and_names_are_checked() -> Result<(), ConfigError> {
        let file = ClusterFile {
            nats: Some(vec!["nats://10.0.0.1:4222".into()]),
            node_id: Some("from-file".into()),
            cluster_name: Some("blue".into()),
        };
        let flags = ClusterArgs {
            node_id: Some("n2".into()),
            ..args(&["nats://127.0.0.1:4222", " 127.0.0.1:4223 "])
        };
        let settings = ClusterSettings::resolve(&flags, file, true)?;
        assert_eq!(
            settings,
            Some(ClusterSettings {
                nats: vec!["nats://127.0.0.1:4222".into(), "127.0.0.1:4223".into()],
                node_id: "n2".into(),
                name: "blue".into(),
            })
        );
        let bad = ClusterArgs {
            node_id: Some("n 1".into()),
            ..args(&["nats://127.0.0.1:4222"])
        };
        let err = ClusterSettings::resolve(&bad, ClusterFile::default(), true);
        assert!(err.is_err_and(|e| e.to_string().starts_with("node_id")));
        let bad = args(&["http://x:1"]);
        let err = ClusterSettings::resolve(&bad, ClusterFile::default(), true);
        assert!(err.is_err_and(|e| e.to_string().starts_with("nats")));
        Ok(())
    }

    #[test]
    fn a_cluster_node_needs_the_shared_admin_key() -> Result<(), ConfigError> {
        use crate::config::{Config, FileConfig, ServeArgs};
        let args = ServeArgs {
            database: Some("postgres://chat@db/chat".into()),
            cluster: args(&["nats://127.0.0.1:4222"]),
            ..ServeArgs::default()
        };
        let err = Config::merge(&args, FileConfig::default());
        assert!(err.is_err_and(|e| e.to_string().starts_with("admin_key")));
        let args = ServeArgs {
            admin_key: Some("a-shared-admin-key-0123".into()),
            ..args
        };
        let config = Config::merge(&args, FileConfig::default())?;
        assert!(config.cluster.is_some());
        Ok(())
    }

    #[test]
    fn the_node_id_defaults_to_the_host_name() -> Result<(), ConfigError> {
        let settings =
            ClusterSettings::resolve(&args(&["127.0.0.1:4222"]), ClusterFile::default(), true)?;
        let settings = settings.ok_or(ConfigError::Invalid {
            setting: "nats",
            message: "no cluster".into(),
        })?;
        assert!(!settings.node_id.is_empty());
        assert_eq!(settings.name, DEFAULT_CLUSTER_NAME);
        Ok(())
    }
}
