//! `chathooks:plugin/kv`: the plugin's private key-value store. The namespace is the plugin's name, set
//! by the host; the plugin only ever names keys inside it.

use crate::plugins::bindings::kv::{Error, Host};
use crate::plugins::limits::{MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES};
use crate::store::kv::{Commit, KvError, KvQuota, KvStore};
use std::sync::Arc;

/// What `kv` needs: the store, the plugin's namespace and its quota, and when the current call's writes
/// are committed.
pub struct KvCtx {
    plugin: Arc<str>,
    backing: Backing,
    quota: KvQuota,
    commit: Commit,
}

/// Where a context's keys live.
enum Backing {
    /// The server's store (the plugin's namespace in it).
    Shared(Arc<KvStore>),
    /// A store of its own in memory, opened on the first KV call: a warm-up's, whose calls mostly make
    /// none (creating its schema took a fifth of a millisecond per instance at every load and start;
    /// BENCHMARKS.md, problem 27).
    Throwaway(Option<KvStore>),
}

impl Backing {
    fn store(&mut self) -> Result<&KvStore, Error> {
        match self {
            Backing::Shared(store) => Ok(store),
            Backing::Throwaway(opened) => match opened {
                Some(store) => Ok(store),
                None => Ok(opened.insert(KvStore::open_in_memory().map_err(guest_error)?)),
            },
        }
    }
}

impl KvCtx {
    /// A context for `plugin` over `store`, holding at most `quota`.
    pub(crate) fn new(plugin: Arc<str>, store: Arc<KvStore>, quota: KvQuota) -> Self {
        KvCtx {
            plugin,
            backing: Backing::Shared(store),
            quota,
            commit: Commit::Now,
        }
    }

    /// A context for `plugin` over a throwaway store in memory, seen by nothing else, holding at most
    /// `quota`.
    pub(crate) fn throwaway(plugin: Arc<str>, quota: KvQuota) -> Self {
        KvCtx {
            plugin,
            backing: Backing::Throwaway(None),
            quota,
            commit: Commit::Now,
        }
    }

    /// Commits the writes of the calls from now on as `commit` says: [`Commit::Later`] for the
    /// dispatcher's deliveries.
    pub(crate) fn set_commit(&mut self, commit: Commit) {
        self.commit = commit;
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::InvalidKey("keys must not be empty".into()));
    }
    if key.len() > MAX_KV_KEY_BYTES {
        return Err(Error::InvalidKey(format!(
            "keys are at most {MAX_KV_KEY_BYTES} bytes, this one is {}",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_KV_VALUE_BYTES {
        return Err(Error::ValueTooLarge(MAX_KV_VALUE_BYTES as u64));
    }
    Ok(())
}

fn guest_error(err: KvError) -> Error {
    match err {
        KvError::NotANumber => Error::NotANumber,
        KvError::QuotaExceeded { .. } => Error::QuotaExceeded,
        other => Error::Storage(other.to_string()),
    }
}

impl Host for KvCtx {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        check_key(&key)?;
        self.backing
            .store()?
            .get(&self.plugin, &key)
            .map_err(guest_error)
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), Error> {
        check_key(&key)?;
        check_value(&value)?;
        self.backing
            .store()?
            .set_within(&self.plugin, self.quota, self.commit, &key, &value, ttl_ms)
            .map_err(guest_error)
    }

    fn delete(&mut self, key: String) -> Result<bool, Error> {
        check_key(&key)?;
        self.backing
            .store()?
            .delete_with(&self.plugin, &key, self.commit)
            .map_err(guest_error)
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, Error> {
        self.backing
            .store()?
            .list_keys(&self.plugin, &prefix)
            .map_err(guest_error)
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, Error> {
        check_key(&key)?;
        if let Some(value) = &new {
            check_value(value)?;
        }
        self.backing
            .store()?
            .compare_and_swap_within(
                &self.plugin,
                self.quota,
                self.commit,
                &key,
                expected.as_deref(),
                new.as_deref(),
            )
            .map_err(guest_error)
    }

    fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        check_key(&key)?;
        self.backing
            .store()?
            .increment_within(&self.plugin, self.quota, self.commit, &key, delta)
            .map_err(guest_error)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const QUOTA: KvQuota = KvQuota {
        max_keys: 10,
        max_bytes: 1 << 20,
    };

    /// A throwaway context keeps what its calls write, and nothing reaches the server's store.
    #[test]
    fn a_throwaway_context_keeps_its_writes_to_itself() {
        let server = Arc::new(KvStore::open_in_memory().unwrap());
        let mut real = KvCtx::new("p".into(), server.clone(), QUOTA);
        let mut throwaway = KvCtx::throwaway("p".into(), QUOTA);
        assert_eq!(throwaway.get("k".into()).unwrap(), None);
        throwaway.set("k".into(), b"v".to_vec(), None).unwrap();
        assert_eq!(throwaway.increment("n".into(), 2).unwrap(), 2);
        assert_eq!(throwaway.get("k".into()).unwrap(), Some(b"v".to_vec()));
        assert_eq!(throwaway.list_keys(String::new()).unwrap(), ["k", "n"]);
        assert!(server.dump("p").unwrap().is_empty());
        assert_eq!(real.get("k".into()).unwrap(), None);
    }
}
