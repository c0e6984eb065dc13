//! The two bounds on what a plugin's queues may hold (see "Bounded backlogs" in [`super`]): the backlog
//! cap applied at fan-out, and the grace period of a plugin that is no longer loaded. Both only decide;
//! the round writes the dead letters and logs.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::model::Millis;
use crate::plugins::registry::LoadedPlugin;

use super::queues::Queues;

/// The backlog of each plugin an event may be fanned out to, counted once per round and kept up to date
/// as the round queues deliveries.
#[derive(Debug)]
pub(super) struct Backlogs {
    cap: usize,
    counts: HashMap<String, usize>,
}

/// Where one event goes: the plugins it is queued for, and those whose backlog is full.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Split {
    /// Queue a delivery for these.
    pub queue: Vec<String>,
    /// Dead-letter it for these.
    pub full: Vec<String>,
}

impl Backlogs {
    /// Backlogs capped at `cap` deliveries per plugin.
    pub fn new(cap: usize) -> Self {
        Backlogs {
            cap,
            counts: HashMap::new(),
        }
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Splits `plugins` (an event's subscribers) by whether each has room, counting the deliveries queued.
    pub fn split(&mut self, queues: &Queues, plugins: &[String]) -> Split {
        let mut split = Split::default();
        for plugin in plugins {
            let count = self
                .counts
                .entry(plugin.clone())
                .or_insert_with(|| queues.plugin_len(plugin));
            if *count < self.cap {
                *count += 1;
                split.queue.push(plugin.clone());
            } else {
                split.full.push(plugin.clone());
            }
        }
        split
    }
}

/// Why a delivery to plugin `name` was not queued (the dead letter's reason); `disabled`: its circuit
/// breaker has it disabled.
pub(super) fn backlog_full_reason(name: &str, cap: usize, disabled: bool) -> String {
    let why = if disabled {
        ", while disabled by its circuit breaker"
    } else {
        ""
    };
    format!(
        "not queued: plugin {name} already had {cap} deliveries waiting, the most a plugin may have \
         (--max-plugin-backlog){why}"
    )
}

/// Why an unloaded plugin's deliveries were given up (the dead letters' reason).
pub(super) fn unloaded_reason(plugin: &str, grace: Duration) -> String {
    format!(
        "given up: plugin {plugin} was not loaded for {} s (its file was removed, or fails to load with \
         no earlier version serving); replay once it is back",
        grace.as_secs()
    )
}

/// Since when each plugin with waiting deliveries has had no running version, by the dispatcher's clock.
#[derive(Debug, Default)]
pub(super) struct Unloaded {
    since: HashMap<String, Millis>,
}

impl Unloaded {
    /// Notes which plugins owed deliveries are not running at `now`, and returns those not running for
    /// `grace` or longer: their waiting deliveries are to be dead-lettered. A plugin that is back is
    /// forgotten, so a later unload starts a new grace period.
    pub fn expired(
        &mut self,
        queues: &Queues,
        running: &[LoadedPlugin],
        now: Millis,
        grace: Duration,
    ) -> Vec<String> {
        let running: HashSet<&str> = running.iter().map(LoadedPlugin::name).collect();
        let absent: Vec<&str> = queues
            .plugins()
            .filter(|name| !running.contains(name) && queues.has_waiting(name))
            .collect();
        self.since.retain(|name, _| absent.contains(&name.as_str()));
        let grace = Millis::try_from(grace.as_millis()).unwrap_or(Millis::MAX);
        let mut expired = Vec::new();
        for name in absent {
            let since = *self.since.entry(name.to_owned()).or_insert(now);
            if now.saturating_sub(since) >= grace {
                expired.push(name.to_owned());
            }
        }
        expired.sort_unstable();
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::QueuedDelivery;

    fn row(plugin: &str, event_id: i64) -> QueuedDelivery {
        QueuedDelivery {
            event_id,
            plugin: plugin.to_owned(),
            conversation: "c".to_owned(),
            next_attempt_at: 0,
            in_flight: false,
        }
    }

    #[test]
    fn a_full_plugin_gets_no_more_deliveries_and_the_others_are_unaffected() {
        let queues = Queues::load(vec![row("p", 1), row("p", 2)], 0);
        let mut backlogs = Backlogs::new(3);
        let both = ["p".to_owned(), "q".to_owned()];
        let split = backlogs.split(&queues, &both);
        assert_eq!((split.queue.len(), split.full.len()), (2, 0));
        let split = backlogs.split(&queues, &both);
        assert_eq!(
            (split.queue, split.full),
            (vec!["q".to_owned()], vec!["p".to_owned()])
        );
    }

    #[test]
    fn unloaded_plugins_expire_after_the_grace_unless_they_come_back() {
        let queues = Queues::load(vec![row("p", 1), row("q", 1)], 0);
        let grace = Duration::from_secs(10);
        let mut unloaded = Unloaded::default();
        assert!(unloaded.expired(&queues, &[], 1_000, grace).is_empty());
        assert!(unloaded.expired(&queues, &[], 10_999, grace).is_empty());
        assert_eq!(unloaded.expired(&queues, &[], 11_000, grace), ["p", "q"]);
        // Nothing waits any more: forgotten; owed again later: a new grace period.
        let empty = Queues::default();
        assert!(unloaded.expired(&empty, &[], 12_000, grace).is_empty());
        assert!(unloaded.expired(&queues, &[], 13_000, grace).is_empty());
        assert_eq!(unloaded.expired(&queues, &[], 23_000, grace), ["p", "q"]);
    }
}
