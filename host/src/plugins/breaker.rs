//! The circuit breaker of one plugin: after `breaker_failures` consecutive failed calls the plugin is
//! disabled for `breaker_cooldown`, then one trial call is let through (half-open): its success enables
//! the plugin again, its failure disables it for another cool-down.
//!
//! While disabled, calls are refused without running ([`Admission::Refused`]): before-hooks are skipped
//! or reject according to the plugin's fail mode, and after-hook deliveries wait in the outbox (the
//! dispatcher asks [`Breaker::dispatch_capacity`] before starting any). A new version of the plugin
//! starts with a closed breaker.
//!
//! The breaker never reads a clock itself: every method takes `now`, which its caller
//! ([`super::registry::LoadedPlugin`]) reads from the runtime's [`crate::clock::Clock`], so a test moves a
//! manual clock past the cool-down instead of waiting it out.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::limits::PluginLimits;

/// Whether a call may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Run it.
    Call,
    /// Run it as the half-open trial: its outcome decides whether the plugin comes back.
    Trial,
    /// Do not run it: the plugin is disabled.
    Refused {
        /// Consecutive failures that disabled it.
        failures: u32,
        /// Until the next trial may run (zero while a trial is running).
        retry_in: Duration,
    },
}

/// A change of the breaker's state caused by a call's outcome, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed state.
    None,
    /// The plugin was just disabled after this many consecutive failures.
    Disabled {
        /// Consecutive failures.
        failures: u32,
    },
    /// The trial call failed: disabled again.
    StillFailing,
    /// The trial call succeeded: enabled again.
    Recovered,
}

/// The breaker's state as the admin API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerView {
    /// Failed calls in a row (0 after any success).
    pub consecutive_failures: u32,
    /// While disabled: time until a trial call (zero once it is due or running).
    pub disabled_for: Option<Duration>,
    /// Times the breaker has disabled the plugin.
    pub trips: u64,
}

#[derive(Debug, Default)]
struct State {
    consecutive: u32,
    /// Disabled until then (`Some` while open or half-open).
    open_until: Option<Instant>,
    /// A trial call is running.
    trial_running: bool,
    trips: u64,
}

/// One plugin's breaker. See the module docs.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<State>,
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call may run now; claims the trial when one is due.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut s = self.lock();
        let Some(until) = s.open_until else {
            return Admission::Call;
        };
        if s.trial_running || now < until {
            return Admission::Refused {
                failures: s.consecutive,
                retry_in: until.saturating_duration_since(now),
            };
        }
        s.trial_running = true;
        Admission::Trial
    }

    /// Records the outcome of a call admitted as `admission`.
    pub fn record(
        &self,
        admission: Admission,
        ok: bool,
        limits: &PluginLimits,
        now: Instant,
    ) -> Transition {
        let mut s = self.lock();
        match admission {
            Admission::Refused { .. } => Transition::None,
            Admission::Trial => {
                s.trial_running = false;
                if ok {
                    s.consecutive = 0;
                    s.open_until = None;
                    Transition::Recovered
                } else {
                    s.consecutive = s.consecutive.saturating_add(1);
                    s.open_until = Some(now + limits.breaker_cooldown);
                    Transition::StillFailing
                }
            }
            // A call that started before the breaker opened says nothing about the trial to come.
            Admission::Call if s.open_until.is_some() => Transition::None,
            Admission::Call if ok => {
                s.consecutive = 0;
                Transition::None
            }
            Admission::Call => {
                s.consecutive = s.consecutive.saturating_add(1);
                let threshold = limits.breaker_failures;
                if threshold > 0 && s.consecutive >= threshold {
                    s.open_until = Some(now + limits.breaker_cooldown);
                    s.trips += 1;
                    Transition::Disabled {
                        failures: s.consecutive,
                    }
                } else {
                    Transition::None
                }
            }
        }
    }

    /// Gives back a trial claimed by a call that turned out not to run (the hook is not exported).
    pub fn release(&self, admission: Admission) {
        if admission == Admission::Trial {
            self.lock().trial_running = false;
        }
    }

    /// How many after-hook deliveries the dispatcher may start now: `normal` while enabled, one when a
    /// trial is due, none while disabled or while the trial runs.
    pub fn dispatch_capacity(&self, normal: usize, now: Instant) -> usize {
        let s = self.lock();
        match s.open_until {
            None => normal,
            Some(until) if !s.trial_running && now >= until => normal.min(1),
            Some(_) => 0,
        }
    }

    /// The state for the admin API.
    pub fn view(&self, now: Instant) -> BreakerView {
        let s = self.lock();
        BreakerView {
            consecutive_failures: s.consecutive,
            disabled_for: s.open_until.map(|u| u.saturating_duration_since(now)),
            trips: s.trips,
        }
    }

    /// Closes the breaker (a new version was loaded).
    pub fn reset(&self) {
        let trips = self.lock().trips;
        *self.lock() = State {
            trips,
            ..State::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PluginLimits {
        PluginLimits {
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(10),
            ..PluginLimits::default()
        }
    }

    #[test]
    fn opens_after_consecutive_failures_then_half_opens_for_one_trial() {
        let (b, l, t0) = (Breaker::default(), limits(), Instant::now());
        for _ in 0..2 {
            assert_eq!(b.record(b.admit(t0), false, &l, t0), Transition::None);
        }
        assert_eq!(b.record(b.admit(t0), true, &l, t0), Transition::None);
        assert_eq!(b.view(t0).consecutive_failures, 0);
        for _ in 0..2 {
            b.record(b.admit(t0), false, &l, t0);
        }
        assert_eq!(
            b.record(b.admit(t0), false, &l, t0),
            Transition::Disabled { failures: 3 }
        );
        assert!(matches!(
            b.admit(t0),
            Admission::Refused { failures: 3, .. }
        ));
        assert_eq!(b.dispatch_capacity(4, t0), 0);

        let later = t0 + Duration::from_secs(11);
        assert_eq!(b.dispatch_capacity(4, later), 1);
        assert_eq!(b.admit(later), Admission::Trial);
        assert!(
            matches!(b.admit(later), Admission::Refused { .. }),
            "one trial at a time"
        );
        assert_eq!(b.dispatch_capacity(4, later), 0);
        assert_eq!(
            b.record(Admission::Trial, false, &l, later),
            Transition::StillFailing
        );
        assert!(matches!(b.admit(later), Admission::Refused { .. }));

        let much_later = later + Duration::from_secs(11);
        assert_eq!(b.admit(much_later), Admission::Trial);
        assert_eq!(
            b.record(Admission::Trial, true, &l, much_later),
            Transition::Recovered
        );
        assert_eq!(b.admit(much_later), Admission::Call);
        assert_eq!(b.view(much_later).trips, 1);
    }

    #[test]
    fn zero_failures_never_opens() {
        let (b, t0) = (Breaker::default(), Instant::now());
        let l = PluginLimits {
            breaker_failures: 0,
            ..PluginLimits::default()
        };
        for _ in 0..100 {
            b.record(b.admit(t0), false, &l, t0);
        }
        assert_eq!(b.admit(t0), Admission::Call);
    }
}
