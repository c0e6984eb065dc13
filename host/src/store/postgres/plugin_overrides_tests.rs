//! Admins' plugin overrides are per cluster on PostgreSQL: two clusters sharing a database, and a server
//! on its own before them, each see their own rows only.

use chathooks_testservers::Postgres;
use serde_json::{Map, json};

use crate::store::{Db, Durability};

#[test]
fn overrides_are_kept_per_cluster() -> anyhow::Result<()> {
    let Some(pg) = Postgres::shared() else {
        return Ok(());
    };
    let url = pg.url_for_new_database()?;
    let open = || Db::connect(&url, Durability::Process, super::db_tests::test_pool());
    let alone = open()?;
    let settings = json!({"greeting": "alone"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    alone.write(|tx| tx.put_plugin_overrides("p", false, &settings, 1))?;
    drop(alone);
    let (a, b) = (open()?, open()?);
    for (db, cluster) in [(&a, "a"), (&b, "b")] {
        db.as_postgres()
            .ok_or_else(|| anyhow::anyhow!("PostgreSQL"))?
            .join_cluster(cluster, "n1")?;
    }
    assert_eq!(
        a.read(|r| r.plugin_overrides("p"))?,
        None,
        "not the server's own row"
    );
    let written = a.write(|tx| tx.put_plugin_overrides("p", true, &Map::new(), 2))?;
    assert_eq!((written.disabled, written.revision), (true, 1));
    assert_eq!(
        b.read(|r| r.plugin_overrides("p"))?,
        None,
        "not cluster a's row"
    );
    assert!(b.read(|r| r.all_plugin_overrides())?.is_empty());
    assert_eq!(a.read(|r| r.all_plugin_overrides())?, vec![written]);
    Ok(())
}
