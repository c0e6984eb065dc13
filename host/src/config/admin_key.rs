//! The admin key: configured, or generated on the first start and kept in `<data dir>/admin.key` (mode
//! 0600) so later starts read it; compared in constant time.

use std::io::Write;

use super::{ADMIN_KEY_FILE, Config, ConfigError, check_admin_key};

/// Prefix of generated admin keys, so they are recognisable (and distinct from user tokens, `cht_`).
pub const ADMIN_KEY_PREFIX: &str = "chadm_";

/// The admin key in force and where it came from.
#[derive(Clone)]
pub struct AdminKey {
    /// The key itself.
    key: String,
    /// True when this start generated it (the caller prints it, once).
    pub generated: bool,
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminKey")
            .field("key", &"<redacted>")
            .field("generated", &self.generated)
            .finish()
    }
}

impl AdminKey {
    /// A key given directly (tests, embedding).
    pub fn new(key: impl Into<String>) -> AdminKey {
        AdminKey {
            key: key.into(),
            generated: false,
        }
    }

    /// The configured key; else the one in `<data dir>/admin.key`; else a new random key, written there
    /// with mode 0600 (created exclusively, so two servers starting at once cannot both write one).
    pub fn load_or_create(config: &Config) -> Result<AdminKey, ConfigError> {
        if let Some(key) = &config.admin_key {
            return Ok(AdminKey::new(key.clone()));
        }
        let path = config.data_dir.join(ADMIN_KEY_FILE);
        let file_error = |source| ConfigError::AdminKeyFile {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = text.trim().to_owned();
                check_admin_key(&key)?;
                return Ok(AdminKey::new(key));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(file_error(err)),
        }
        std::fs::create_dir_all(&config.data_dir).map_err(file_error)?;
        let key = format!(
            "{ADMIN_KEY_PREFIX}{}",
            crate::store::ids::random_hex(32).map_err(|e| file_error(std::io::Error::other(e)))?
        );
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(file_error)?;
        file.write_all(format!("{key}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(file_error)?;
        Ok(AdminKey {
            key,
            generated: true,
        })
    }

    /// Whether `candidate` is the key. Compares SHA-256 digests in constant time, so the time taken
    /// reveals nothing about how much of a guess was right.
    pub fn matches(&self, candidate: &str) -> bool {
        use sha2::{Digest, Sha256};
        let a = Sha256::digest(self.key.as_bytes());
        let b = Sha256::digest(candidate.as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }

    /// The key, to print once after generating it.
    pub fn reveal(&self) -> &str {
        &self.key
    }
}
