//! Rate limits of plugin powers: a token bucket per plugin and [`Power`] (bot posts, custom events, HTTP
//! requests, push notifications, timer changes).
//!
//! ## Overview
//! Each plugin version has one [`PowerLimiter`], shared by all its instances (so recycling an instance
//! changes nothing; a reload starts full buckets). A host interface asks it with
//! [`PowerLimiter::try_acquire`] after checking the grant and the arguments and before handing the call to
//! the services; a refused call does nothing, returns the WIT error `rate-limited` with the time until a
//! call would be allowed, and is counted per power ([`PowerLimiter::refused`]) for the admin API and
//! `/metrics`. A refused call is cheap and returns at once; it is not a host wait, so it is not credited
//! back to the call's time budget, and a plugin that retries in a loop runs out of budget.
//!
//! ## Buckets
//! A bucket holds up to `burst` tokens and gains `per_second` tokens a second; a call takes one. Tokens are
//! counted in billionths as integers, so a bucket on a [`ManualClock`] refills exactly (one second at ten
//! per second gives exactly ten calls). Time comes from a [`Clock`]: the system's, or a manual one that
//! tests advance by hand.
//!
//! [`ManualClock`]: crate::clock::ManualClock

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

#[cfg(test)]
use crate::clock::ManualClock;
use crate::clock::{Clock, SystemClock};

use crate::plugins::limits::{
    DEFAULT_EVENTS_BURST, DEFAULT_EVENTS_PER_SECOND, DEFAULT_HTTP_REQUESTS_BURST,
    DEFAULT_HTTP_REQUESTS_PER_SECOND, DEFAULT_POSTS_BURST, DEFAULT_POSTS_PER_SECOND,
    DEFAULT_PUSHES_BURST, DEFAULT_PUSHES_PER_SECOND, DEFAULT_TIMERS_BURST,
    DEFAULT_TIMERS_PER_SECOND,
};

// One plugin's burst of events must fit in a connection's live channel (see `DEFAULT_EVENTS_BURST`).
const _: () = assert!((DEFAULT_EVENTS_BURST as usize) < crate::live::USER_CHANNEL_CAPACITY);

/// A rate-limited power. Its [`Power::name`] is the prefix of its manifest keys (`posts_per_second`,
/// `posts_burst`), its field in the admin API and its `power` label in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Power {
    /// `chat.post-message` and `chat.join-conversation`.
    Posts,
    /// `events.to-conversation` and `events.to-user`.
    Events,
    /// `http.send`.
    HttpRequests,
    /// `push.send`.
    Pushes,
    /// `scheduler.once`, `scheduler.every` and `scheduler.cancel`.
    Timers,
}

impl Power {
    /// Every power, in the order of the WIT.
    pub const ALL: [Power; 5] = [
        Power::Posts,
        Power::Events,
        Power::HttpRequests,
        Power::Pushes,
        Power::Timers,
    ];

    /// `posts`, `events`, `http_requests`, `pushes` or `timers`.
    pub fn name(self) -> &'static str {
        match self {
            Power::Posts => "posts",
            Power::Events => "events",
            Power::HttpRequests => "http_requests",
            Power::Pushes => "pushes",
            Power::Timers => "timers",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One power's limit: `per_second` calls a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second (at least 1).
    pub per_second: u32,
    /// Most tokens the bucket holds (at least 1).
    pub burst: u32,
}

/// The rate limits of every power of one plugin (the manifest's `[limits]` `<power>_per_second` and
/// `<power>_burst`; the defaults are in [`crate::plugins::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerRates {
    rates: [Rate; 5],
}

impl Default for PowerRates {
    fn default() -> Self {
        let rate = |per_second, burst| Rate { per_second, burst };
        PowerRates {
            rates: [
                rate(DEFAULT_POSTS_PER_SECOND, DEFAULT_POSTS_BURST),
                rate(DEFAULT_EVENTS_PER_SECOND, DEFAULT_EVENTS_BURST),
                rate(
                    DEFAULT_HTTP_REQUESTS_PER_SECOND,
                    DEFAULT_HTTP_REQUESTS_BURST,
                ),
                rate(DEFAULT_PUSHES_PER_SECOND, DEFAULT_PUSHES_BURST),
                rate(DEFAULT_TIMERS_PER_SECOND, DEFAULT_TIMERS_BURST),
            ],
        }
    }
}

impl PowerRates {
    /// The limit of `power`.
    pub fn get(&self, power: Power) -> Rate {
        self.rates[power.index()]
    }

    /// Sets the limit of `power`.
    pub fn set(&mut self, power: Power, rate: Rate) {
        self.rates[power.index()] = rate;
    }
}

/// A call refused by a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "rate limited: more than {} {} per second (burst {}); retry in {} ms",
    rate.per_second, power.name(), rate.burst, retry_after.as_millis()
)]
pub struct RateLimited {
    /// The power refused.
    pub power: Power,
    /// Its limit.
    pub rate: Rate,
    /// How long until a call would be allowed.
    pub retry_after: Duration,
}

impl RateLimited {
    /// [`RateLimited::retry_after`] in whole milliseconds, rounded up (what the WIT's `rate-limited`
    /// carries): a plugin that waits that long is allowed.
    pub fn retry_after_ms(&self) -> u64 {
        let nanos = self.retry_after.as_nanos();
        u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// Calls refused by the rate limit, per power, as the admin API shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RateLimitedCounts {
    /// Bot posts and joins refused.
    pub posts: u64,
    /// Custom events refused.
    pub events: u64,
    /// HTTP requests refused.
    pub http_requests: u64,
    /// Push notifications refused.
    pub pushes: u64,
    /// Timer changes refused.
    pub timers: u64,
}

impl RateLimitedCounts {
    /// The count of `power`.
    pub fn get(&self, power: Power) -> u64 {
        match power {
            Power::Posts => self.posts,
            Power::Events => self.events,
            Power::HttpRequests => self.http_requests,
            Power::Pushes => self.pushes,
            Power::Timers => self.timers,
        }
    }

    fn slot(&mut self, power: Power) -> &mut u64 {
        match power {
            Power::Posts => &mut self.posts,
            Power::Events => &mut self.events,
            Power::HttpRequests => &mut self.http_requests,
            Power::Pushes => &mut self.pushes,
            Power::Timers => &mut self.timers,
        }
    }

    /// These counts plus `other`'s.
    pub fn plus(mut self, other: &RateLimitedCounts) -> RateLimitedCounts {
        for power in Power::ALL {
            *self.slot(power) += other.get(power);
        }
        self
    }
}

/// Billionths of a token in one token.
const NANO_TOKENS: u128 = 1_000_000_000;

/// One power's bucket.
#[derive(Debug)]
struct Bucket {
    /// Tokens in billionths.
    nano_tokens: u128,
    /// When `nano_tokens` was last brought up to date.
    refilled: Instant,
}

/// The buckets of one plugin version (see the module docs).
#[derive(Debug)]
pub struct PowerLimiter {
    rates: PowerRates,
    clock: Arc<dyn Clock>,
    buckets: [Mutex<Bucket>; 5],
    refused: [AtomicU64; 5],
}

impl PowerLimiter {
    /// Full buckets with `rates`, on `clock`.
    pub fn new(rates: PowerRates, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        PowerLimiter {
            buckets: std::array::from_fn(|i| {
                Mutex::new(Bucket {
                    nano_tokens: u128::from(rates.rates[i].burst) * NANO_TOKENS,
                    refilled: now,
                })
            }),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            rates,
            clock,
        }
    }

    /// Takes a token for one call of `power`, or says how long until one is there (and counts the
    /// refusal).
    pub fn try_acquire(&self, power: Power) -> Result<(), RateLimited> {
        let rate = self.rates.get(power);
        let per_second = u128::from(rate.per_second.max(1));
        let now = self.clock.now();
        let mut bucket = self.buckets[power.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(bucket.refilled).as_nanos();
        let full = u128::from(rate.burst) * NANO_TOKENS;
        // Tokens gained: `per_second` per 10^9 ns, in billionths of a token.
        bucket.nano_tokens = bucket
            .nano_tokens
            .saturating_add(elapsed.saturating_mul(per_second))
            .min(full);
        bucket.refilled = now;
        if bucket.nano_tokens >= NANO_TOKENS {
            bucket.nano_tokens -= NANO_TOKENS;
            return Ok(());
        }
        let missing = NANO_TOKENS - bucket.nano_tokens;
        let wait_nanos = missing.div_ceil(per_second);
        drop(bucket);
        self.refused[power.index()].fetch_add(1, Ordering::Relaxed);
        Err(RateLimited {
            power,
            rate,
            retry_after: Duration::from_nanos(u64::try_from(wait_nanos).unwrap_or(u64::MAX)),
        })
    }

    /// Calls refused so far, per power.
    pub fn refused(&self) -> RateLimitedCounts {
        let mut counts = RateLimitedCounts::default();
        for power in Power::ALL {
            *counts.slot(power) = self.refused[power.index()].load(Ordering::Relaxed);
        }
        counts
    }

    /// The limits this limiter enforces.
    pub fn rates(&self) -> &PowerRates {
        &self.rates
    }
}

impl Default for PowerLimiter {
    /// Default rates on the system clock.
    fn default() -> Self {
        PowerLimiter::new(PowerRates::default(), Arc::new(SystemClock))
    }
}

/// For the host interfaces' tests: every power at one call a second with a burst of `burst`, on a
/// manual clock.
#[cfg(test)]
pub(crate) fn one_per_second(burst: u32) -> (Arc<PowerLimiter>, ManualClock) {
    let clock = ManualClock::new();
    let mut rates = PowerRates::default();
    for power in Power::ALL {
        rates.set(
            power,
            Rate {
                per_second: 1,
                burst,
            },
        );
    }
    (
        Arc::new(PowerLimiter::new(rates, Arc::new(clock.clone()))),
        clock,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u32, burst: u32) -> (PowerLimiter, ManualClock) {
        let clock = ManualClock::new();
        let mut rates = PowerRates::default();
        rates.set(Power::Posts, Rate { per_second, burst });
        (PowerLimiter::new(rates, Arc::new(clock.clone())), clock)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let (limiter, clock) = limiter(10, 50);
        let allowed = (0..20_000)
            .filter(|_| limiter.try_acquire(Power::Posts).is_ok())
            .count();
        assert_eq!(allowed, 50);
        assert_eq!(limiter.refused().posts, 19_950);
        // An empty bucket: one token in a tenth of a second.
        let refused = limiter.try_acquire(Power::Posts).expect_err("empty");
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(refused.retry_after_ms(), 100);
        assert_eq!(refused.power, Power::Posts);
        assert!(refused.to_string().contains("retry in 100 ms"), "{refused}");
        clock.advance(Duration::from_millis(99));
        assert!(limiter.try_acquire(Power::Posts).is_err());
        let refused = limiter.try_acquire(Power::Posts).expect_err("not yet");
        assert_eq!(refused.retry_after, Duration::from_millis(1));
        clock.advance(Duration::from_millis(1));
        assert!(limiter.try_acquire(Power::Posts).is_ok());
        // A second later: exactly ten more.
        clock.advance(Duration::from_secs(1));
        let allowed = (0..100)
            .filter(|_| limiter.try_acquire(Power::Posts).is_ok())
            .count();
        assert_eq!(allowed, 10);
        // A long pause refills to the burst, no further.
        clock.advance(Duration::from_secs(3600));
        let allowed = (0..100)
            .filter(|_| limiter.try_acquire(Power::Posts).is_ok())
            .count();
        assert_eq!(allowed, 50);
    }

    #[test]
    fn each_power_has_its_own_bucket_and_count() {
        let clock = ManualClock::new();
        let mut rates = PowerRates::default();
        for power in Power::ALL {
            rates.set(
                power,
                Rate {
                    per_second: 1,
                    burst: 2,
                },
            );
        }
        let limiter = PowerLimiter::new(rates, Arc::new(clock.clone()));
        for (n, power) in Power::ALL.into_iter().enumerate() {
            for _ in 0..2 {
                assert!(limiter.try_acquire(power).is_ok(), "{power:?}");
            }
            for _ in 0..=n {
                let refused = limiter.try_acquire(power).expect_err("over the burst");
                assert_eq!(refused.retry_after, Duration::from_secs(1));
            }
        }
        let counts = limiter.refused();
        let expected = RateLimitedCounts {
            posts: 1,
            events: 2,
            http_requests: 3,
            pushes: 4,
            timers: 5,
        };
        assert_eq!(counts, expected);
        assert_eq!(counts.plus(&expected).timers, 10);
    }

    #[test]
    fn the_defaults_are_the_named_constants() {
        let rates = PowerRates::default();
        assert_eq!(
            rates.get(Power::Posts),
            Rate {
                per_second: DEFAULT_POSTS_PER_SECOND,
                burst: DEFAULT_POSTS_BURST
            }
        );
        assert_eq!(
            rates.get(Power::Timers).burst,
            DEFAULT_TIMERS_BURST,
            "{rates:?}"
        );
        let names: Vec<&str> = Power::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            ["posts", "events", "http_requests", "pushes", "timers"]
        );
    }
}
