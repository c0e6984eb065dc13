//! `chathooks:plugin/scheduler`: timers that call the plugin's `on-timer` export. Checked here; stored
//! and fired by the runtime's services (the server keeps them in SQLite).

use std::sync::Arc;

use crate::plugins::bindings::scheduler::{Error, Host};
use crate::plugins::powers::{
    PluginPowers, Power, PowerError, PowerLimiter, ServicesSlot, TimerSpec,
};

/// Longest timer name: an identifier such as `remind:42`.
pub const MAX_TIMER_NAME_BYTES: usize = 128;

/// Largest payload: enough for a reminder's text and where to post it.
pub const MAX_TIMER_PAYLOAD_BYTES: usize = 16 * 1024;

/// Shortest interval of a repeating timer: a plugin that wants to run more often than every second is
/// polling, and each firing is a plugin call and a database write.
pub const MIN_TIMER_INTERVAL_MS: u64 = 1000;

/// Longest delay or interval: a year. Longer is almost certainly a unit mistake (seconds for ms).
pub const MAX_TIMER_DELAY_MS: u64 = 366 * 24 * 3600 * 1000;

/// What `scheduler` needs.
pub struct SchedulerCtx {
    plugin: Arc<str>,
    powers: Arc<PluginPowers>,
    services: ServicesSlot,
    /// The plugin's rate limits ([`Power::Timers`]: setting and cancelling).
    limiter: Arc<PowerLimiter>,
    /// Whether the plugin exports `on-timer` (a timer without it could never fire).
    has_on_timer: bool,
}

impl SchedulerCtx {
    /// A context for `plugin`.
    pub(crate) fn new(
        plugin: Arc<str>,
        powers: Arc<PluginPowers>,
        services: ServicesSlot,
        limiter: Arc<PowerLimiter>,
        has_on_timer: bool,
    ) -> Self {
        SchedulerCtx {
            plugin,
            powers,
            services,
            limiter,
            has_on_timer,
        }
    }

    fn check(&self, name: &str, payload: &str) -> Result<(), Error> {
        if !self.powers.grants.scheduler {
            return Err(Error::Denied(format!(
                "plugin {} is not granted `scheduler` (add `scheduler = true` under [grants] in its manifest)",
                self.plugin
            )));
        }
        if !self.has_on_timer {
            return Err(Error::Denied(format!(
                "plugin {} does not export `on-timer`, so its timers could never fire",
                self.plugin
            )));
        }
        if name.is_empty() || name.len() > MAX_TIMER_NAME_BYTES {
            return Err(Error::Invalid(format!(
                "a timer name is 1-{MAX_TIMER_NAME_BYTES} bytes"
            )));
        }
        if payload.len() > MAX_TIMER_PAYLOAD_BYTES {
            return Err(Error::Invalid(format!(
                "a timer payload is at most {MAX_TIMER_PAYLOAD_BYTES} bytes"
            )));
        }
        Ok(())
    }

    /// Takes a token of the timers' rate limit.
    fn rate_limit(&self) -> Result<(), Error> {
        self.limiter
            .try_acquire(Power::Timers)
            .map_err(|refused| Error::RateLimited(refused.retry_after_ms()))
    }

    fn set(&self, timer: TimerSpec) -> Result<(), Error> {
        self.rate_limit()?;
        self.services.get().set_timer(timer).map_err(guest_error)
    }
}

fn guest_error(e: PowerError) -> Error {
    match e {
        PowerError::Denied(m) => Error::Denied(m),
        PowerError::Rejected(m) | PowerError::NotFound(m) => Error::Invalid(m),
        other => Error::Failed(other.to_string()),
    }
}

impl Host for SchedulerCtx {
    fn once(&mut self, name: String, delay_ms: u64, payload: String) -> Result<(), Error> {
        self.check(&name, &payload)?;
        if delay_ms > MAX_TIMER_DELAY_MS {
            return Err(Error::Invalid(format!(
                "a delay is at most {MAX_TIMER_DELAY_MS} ms"
            )));
        }
        self.set(TimerSpec {
            plugin: self.plugin.to_string(),
            name,
            delay_ms,
            interval_ms: None,
            payload,
        })
    }

    fn every(&mut self, name: String, interval_ms: u64, payload: String) -> Result<(), Error> {
        self.check(&name, &payload)?;
        if !(MIN_TIMER_INTERVAL_MS..=MAX_TIMER_DELAY_MS).contains(&interval_ms) {
            return Err(Error::Invalid(format!(
                "an interval is {MIN_TIMER_INTERVAL_MS}-{MAX_TIMER_DELAY_MS} ms"
            )));
        }
        self.set(TimerSpec {
            plugin: self.plugin.to_string(),
            name,
            delay_ms: interval_ms,
            interval_ms: Some(interval_ms),
            payload,
        })
    }

    fn cancel(&mut self, name: String) -> Result<bool, Error> {
        if !self.powers.grants.scheduler {
            return Err(Error::Denied(format!(
                "plugin {} is not granted `scheduler`",
                self.plugin
            )));
        }
        self.rate_limit()?;
        self.services
            .get()
            .cancel_timer(&self.plugin, &name)
            .map_err(guest_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::powers::{Grants, Recorded, RecordingServices};

    fn ctx(scheduler: bool, has_on_timer: bool) -> (SchedulerCtx, Arc<RecordingServices>) {
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let powers = PluginPowers {
            grants: Grants {
                scheduler,
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        let ctx = SchedulerCtx::new(
            Arc::from("p"),
            Arc::new(powers),
            slot,
            Arc::default(),
            has_on_timer,
        );
        (ctx, services)
    }

    #[test]
    fn timers_are_checked_then_set() {
        let (mut ctx, services) = ctx(true, true);
        assert!(ctx.once("a".into(), 10, "x".into()).is_ok());
        assert!(ctx.every("b".into(), 1000, "y".into()).is_ok());
        assert!(matches!(
            ctx.every("c".into(), 10, "".into()),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            ctx.once("".into(), 10, "".into()),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            ctx.once("d".into(), MAX_TIMER_DELAY_MS + 1, "".into()),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(ctx.cancel("a".into()), Ok(true)));
        assert!(matches!(ctx.cancel("a".into()), Ok(false)));
        let recorded = services.take();
        assert!(matches!(&recorded[1], Recorded::Timer(t) if t.interval_ms == Some(1000)));
        assert_eq!(recorded.len(), 4);
    }

    #[test]
    fn timer_changes_past_the_rate_limit_are_refused() {
        let (limiter, clock) = crate::plugins::powers::one_per_second(2);
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let powers = PluginPowers {
            grants: Grants {
                scheduler: true,
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        let mut ctx = SchedulerCtx::new(
            Arc::from("p"),
            Arc::new(powers),
            slot,
            limiter.clone(),
            true,
        );
        assert!(ctx.once("a".into(), 10, "".into()).is_ok());
        assert!(ctx.cancel("a".into()).is_ok());
        assert!(matches!(
            ctx.every("b".into(), 1000, "".into()),
            Err(Error::RateLimited(1000))
        ));
        assert!(matches!(
            ctx.cancel("a".into()),
            Err(Error::RateLimited(1000))
        ));
        clock.advance(std::time::Duration::from_secs(1));
        assert!(ctx.every("b".into(), 1000, "".into()).is_ok());
        assert_eq!(services.take().len(), 3);
        assert_eq!(limiter.refused().timers, 2);
    }

    #[test]
    fn no_grant_or_no_export_is_denied() {
        let (mut ungranted, _) = ctx(false, true);
        let err = ungranted.once("a".into(), 1, "".into());
        assert!(matches!(err, Err(Error::Denied(_))));
        assert!(matches!(
            ungranted.cancel("a".into()),
            Err(Error::Denied(_))
        ));
        let (mut no_export, _) = ctx(true, false);
        let err = no_export.once("a".into(), 1, "".into());
        assert!(matches!(err, Err(Error::Denied(m)) if m.contains("on-timer")));
    }
}
