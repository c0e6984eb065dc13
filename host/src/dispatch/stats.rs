//! What the dispatcher counts for `/metrics`: deliveries it turned into dead letters, by plugin and cause.
//! The dead letters themselves are in the database (their number is a gauge); these counters say how
//! they came about since the server started.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Why a delivery became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeadLetterCause {
    /// Its last attempt failed.
    Attempts,
    /// Its plugin already had as many deliveries as it may have; it was never queued.
    BacklogFull,
    /// Its plugin stayed unloaded past the grace period.
    Unloaded,
}

impl DeadLetterCause {
    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            DeadLetterCause::Attempts => "attempts",
            DeadLetterCause::BacklogFull => "backlog",
            DeadLetterCause::Unloaded => "unloaded",
        }
    }
}

/// The dispatcher's counters. Plugin names come from the plugins folder (and deliveries owed to them), so
/// the series are bounded by what the operator installed.
#[derive(Debug, Default)]
pub struct DispatchStats {
    dead_lettered: Mutex<BTreeMap<(String, DeadLetterCause), u64>>,
    /// Deliveries owed straight from the outbox by plugin, as of the last round: no row counts them
    /// ([`super::direct`]).
    owed: Mutex<BTreeMap<String, u64>>,
}

impl DispatchStats {
    /// Counts `n` deliveries to `plugin` dead-lettered for `cause`.
    pub fn dead_lettered(&self, plugin: &str, cause: DeadLetterCause, n: u64) {
        if n == 0 {
            return;
        }
        let mut counts = self
            .dead_lettered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *counts.entry((plugin.to_owned(), cause)).or_default() += n;
    }

    /// Notes the deliveries owed straight from the outbox now, by plugin (each round does).
    pub(super) fn set_owed(&self, owed: BTreeMap<String, u64>) {
        *self.owed.lock().unwrap_or_else(PoisonError::into_inner) = owed;
    }

    /// `rows`, the store's undelivered deliveries per plugin
    /// ([`Read::backlog`](crate::store::Read::backlog)), with the deliveries owed straight from the
    /// outbox added: every delivery not yet done, by plugin name.
    pub fn pending_with(&self, rows: Vec<(String, u64)>) -> Vec<(String, u64)> {
        let mut pending: BTreeMap<String, u64> = rows.into_iter().collect();
        for (plugin, n) in self
            .owed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            *pending.entry(plugin.clone()).or_default() += n;
        }
        pending.into_iter().collect()
    }

    /// Deliveries dead-lettered since the start, by plugin and cause (only those that happened).
    pub fn dead_lettered_counts(&self) -> Vec<(String, DeadLetterCause, u64)> {
        self.dead_lettered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((plugin, cause), n)| (plugin.clone(), *cause, *n))
            .collect()
    }
}
