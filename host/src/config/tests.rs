//! Tests of the server settings: flags, file and defaults merged, and bad values refused.

use super::*;

#[test]
fn flags_beat_file_beats_defaults() -> Result<(), Box<dyn std::error::Error>> {
    let file: FileConfig = toml::from_str(
        "listen = \"0.0.0.0:9000\"\nplugins_dir = \"/srv/plugins\"\nbody_limit = 100\n",
    )?;
    let args = ServeArgs {
        listen: Some("127.0.0.1:1234".parse()?),
        ..ServeArgs::default()
    };
    let config = Config::merge(&args, file)?;
    assert_eq!(config.listen.to_string(), "127.0.0.1:1234");
    assert_eq!(config.plugins_dir, PathBuf::from("/srv/plugins"));
    assert_eq!(config.body_limit, 100);
    assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert_eq!(config.durability, Durability::Process);
    Ok(())
}

#[test]
fn resolve_reads_the_config_file_named_by_the_args() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("chathooks.toml");
    std::fs::write(
        &file,
        "data_dir = \"/var/lib/chathooks\"\ndurability = \"power\"\nadmin_key = \"from-the-file-0123456789\"\n",
    )?;
    let args = ServeArgs {
        config: Some(file.clone()),
        admin_key: Some("from-the-flag-0123456789".into()),
        ..ServeArgs::default()
    };
    let config = Config::resolve(&args)?;
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/chathooks"));
    assert_eq!(config.durability, Durability::Power);
    assert_eq!(
        config.admin_key.as_deref(),
        Some("from-the-flag-0123456789")
    );
    assert_eq!(
        config.chat_db_path(),
        PathBuf::from("/var/lib/chathooks/chat.db")
    );
    let missing = ServeArgs {
        config: Some(dir.path().join("nope.toml")),
        ..ServeArgs::default()
    };
    assert!(matches!(
        Config::resolve(&missing),
        Err(ConfigError::ReadFile { .. })
    ));
    Ok(())
}

#[test]
fn http_ca_comes_from_the_flag_or_the_file() -> Result<(), Box<dyn std::error::Error>> {
    let file: FileConfig = toml::from_str("http_ca = \"/etc/chathooks/ca.pem\"\n")?;
    let config = Config::merge(&ServeArgs::default(), file.clone())?;
    assert_eq!(config.http_ca, Some(PathBuf::from("/etc/chathooks/ca.pem")));
    let args = ServeArgs {
        http_ca: Some("/tmp/other.pem".into()),
        ..ServeArgs::default()
    };
    assert_eq!(
        Config::merge(&args, file)?.http_ca,
        Some(PathBuf::from("/tmp/other.pem"))
    );
    assert_eq!(Config::default().http_ca, None);
    Ok(())
}

#[test]
fn bad_settings_are_named() {
    let unknown = toml::from_str::<FileConfig>("listne = \"x\"");
    assert!(unknown.is_err_and(|e| e.to_string().contains("listne")));
    let args = ServeArgs {
        admin_key: Some("short".into()),
        ..ServeArgs::default()
    };
    let err = Config::merge(&args, FileConfig::default());
    assert!(err.is_err_and(|e| e.to_string().starts_with("admin_key")));
    let args = ServeArgs {
        durability: Some("disk".into()),
        ..ServeArgs::default()
    };
    let err = Config::merge(&args, FileConfig::default());
    assert!(err.is_err_and(|e| e.to_string().starts_with("durability")));
}

#[test]
fn the_database_and_its_pool_come_from_the_flag_or_the_file()
-> Result<(), Box<dyn std::error::Error>> {
    let defaults = Config::merge(&ServeArgs::default(), FileConfig::default())?;
    assert_eq!(
        defaults.database, None,
        "SQLite in the data folder by default"
    );
    assert_eq!(defaults.db_pool, PoolOptions::default());
    let file: FileConfig = toml::from_str(
        "database = \"postgres://chat@db/chat\"\ndb_pool_size = 4\ndb_pool_wait_ms = 250\n",
    )?;
    let config = Config::merge(&ServeArgs::default(), file.clone())?;
    assert_eq!(config.database.as_deref(), Some("postgres://chat@db/chat"));
    assert_eq!(config.db_pool.size, 4);
    assert_eq!(config.db_pool.wait, std::time::Duration::from_millis(250));
    let args = ServeArgs {
        database: Some("host=/run/postgresql dbname=other".into()),
        ..ServeArgs::default()
    };
    let config = Config::merge(&args, file)?;
    assert_eq!(
        config.database.as_deref(),
        Some("host=/run/postgresql dbname=other")
    );
    let zero = ServeArgs {
        db_pool_size: Some(0),
        ..ServeArgs::default()
    };
    let err = Config::merge(&zero, FileConfig::default());
    assert!(err.is_err_and(|e| e.to_string().starts_with("db_pool_size")));
    Ok(())
}

#[test]
fn admin_key_is_generated_once_with_mode_0600() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    let first = AdminKey::load_or_create(&config)?;
    assert!(first.generated && first.reveal().starts_with(ADMIN_KEY_PREFIX));
    let second = AdminKey::load_or_create(&config)?;
    assert!(!second.generated && second.matches(first.reveal()));
    assert!(!second.matches("chadm_wrong"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(config.data_dir.join(ADMIN_KEY_FILE))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    Ok(())
}

#[test]
fn the_compiler_is_tiered_by_default_set_by_file_or_flag_and_a_bad_one_refused()
-> Result<(), Box<dyn std::error::Error>> {
    let default = Config::merge(&ServeArgs::default(), toml::from_str("")?)?;
    assert_eq!(default.compilers, Compilers::Tiered);
    let file: FileConfig = toml::from_str("compiler = \"winch\"\n")?;
    let args = ServeArgs {
        compiler: Some("cranelift".into()),
        ..ServeArgs::default()
    };
    assert_eq!(
        Config::merge(&ServeArgs::default(), file.clone())?.compilers,
        Compilers::Winch
    );
    assert_eq!(Config::merge(&args, file)?.compilers, Compilers::Cranelift);
    let bad = ServeArgs {
        compiler: Some("fast".into()),
        ..ServeArgs::default()
    };
    let refused = Config::merge(&bad, toml::from_str("")?)
        .err()
        .map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("compiler") && e.contains("tiered")),
        "{refused:?}"
    );
    Ok(())
}
