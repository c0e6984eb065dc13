//! Admins' overrides of plugins: none until set, written whole, revisions growing, kept per name.

use serde_json::{Map, Value, json};

use super::{TestDb, TestResult};

backend_tests!(TestDb: overrides_are_written_whole_and_their_revision_grows);

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn overrides_are_written_whole_and_their_revision_grows(t: TestDb) -> TestResult {
    assert_eq!(t.db.read(|r| r.plugin_overrides("greeter"))?, None);
    assert!(t.db.read(|r| r.all_plugin_overrides())?.is_empty());

    let settings = object(json!({"greeting": "Hi ☃", "max": 3, "ratio": 0.25, "on": true}));
    let first =
        t.db.write(|tx| tx.put_plugin_overrides("greeter", false, &settings, 10))?;
    assert_eq!(
        (
            first.name.as_str(),
            first.disabled,
            first.revision,
            first.updated_at
        ),
        ("greeter", false, 1, 10)
    );
    assert_eq!(first.settings, settings);
    assert_eq!(t.db.read(|r| r.plugin_overrides("greeter"))?, Some(first));

    let fewer = object(json!({"max": 4}));
    let second =
        t.db.write(|tx| tx.put_plugin_overrides("greeter", true, &fewer, 20))?;
    assert_eq!(
        (
            second.disabled,
            second.revision,
            second.updated_at,
            &second.settings
        ),
        (true, 2, 20, &fewer),
        "the row is replaced whole"
    );
    t.db.write(|tx| tx.put_plugin_overrides("another", true, &Map::new(), 30))?;
    let all = t.db.read(|r| r.all_plugin_overrides())?;
    let names: Vec<(&str, bool, i64)> = all
        .iter()
        .map(|o| (o.name.as_str(), o.disabled, o.revision))
        .collect();
    assert_eq!(names, [("another", true, 1), ("greeter", true, 2)]);

    // A write that fails rolls the row back with the rest of its transaction.
    let failed: crate::store::Result<()> = t.db.write(|tx| {
        tx.put_plugin_overrides("greeter", false, &Map::new(), 40)?;
        Err(crate::store::StoreError::Conflict("no".to_owned()))
    });
    assert!(failed.is_err());
    assert_eq!(
        t.db.read(|r| r.plugin_overrides("greeter"))?
            .map(|o| o.revision),
        Some(2)
    );
    Ok(())
}
