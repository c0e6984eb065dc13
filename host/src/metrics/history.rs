//! The last minutes of the server, sampled: what the console's charts draw (`GET /v1/admin/history`).
//!
//! Every [`SAMPLE_INTERVAL`] a task takes one [`Sample`]: the outbox depth (events not yet fanned out to
//! plugins plus deliveries not yet done), the newest event id, and per plugin its running call and
//! failure totals with the p50/p99 latency of the calls made since the previous sample (the difference
//! of its latency histogram, so a slow minute shows as slow even after hours of fast calls). The last
//! [`SAMPLES_KEPT`] are kept in memory, on this node only; a restart starts a new history.
//!
//! Prometheus (`/metrics`) is where long histories belong; this is for a glance without one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::chat::Chat;
use crate::model::Millis;
use crate::plugins::stats::HistogramSnapshot;
use crate::store::ids::now_ms;

/// Time between samples: fine enough for a chart of minutes, one cheap query every few seconds.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Samples kept: 15 minutes at [`SAMPLE_INTERVAL`].
pub const SAMPLES_KEPT: usize = 180;

/// One moment of the server.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Sample {
    /// When, in milliseconds since the epoch.
    pub at: Millis,
    /// Events not yet fanned out to plugins plus after-hook deliveries not yet done.
    pub outbox_depth: u64,
    /// The newest event id (events stored so far).
    pub events: i64,
    /// Every plugin loaded, by name.
    pub plugins: Vec<PluginSample>,
}

/// One plugin at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PluginSample {
    /// The plugin.
    pub name: String,
    /// Hook calls so far (a running total: rates are the differences between samples).
    pub calls: u64,
    /// Failed calls so far.
    pub failures: u64,
    /// Median latency of the calls since the previous sample, ms; `null` without calls.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of the calls since the previous sample, ms; `null` without calls.
    pub p99_ms: Option<f64>,
}

/// `GET /v1/admin/history`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryView {
    /// Milliseconds between samples.
    pub interval_ms: u64,
    /// Oldest first.
    pub samples: Vec<Sample>,
}

/// The samples, and the histograms the next sample's latencies are the difference from.
#[derive(Debug)]
pub struct History {
    chat: Chat,
    interval: Duration,
    state: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    samples: VecDeque<Sample>,
    previous: HashMap<String, HistogramSnapshot>,
}

impl History {
    /// A history of `chat`'s server sampled every `interval` (the first sample at once) until `closing`
    /// turns true.
    pub fn start(
        chat: Chat,
        interval: Duration,
        mut closing: watch::Receiver<bool>,
    ) -> Arc<History> {
        let history = Arc::new(History {
            chat,
            interval,
            state: Mutex::default(),
        });
        let sampler = history.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(sampler.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {
                        if let Err(err) = sampler.sample().await {
                            tracing::debug!("history sample skipped: {err}");
                        }
                    }
                    changed = closing.changed() => {
                        if changed.is_err() || *closing.borrow() {
                            return;
                        }
                    }
                }
            }
        });
        history
    }

    /// Takes a sample now (what the task does every interval).
    pub async fn sample(&self) -> anyhow::Result<()> {
        let db = self.chat.db().clone();
        let (outbox, backlog, events) = tokio::task::spawn_blocking(move || {
            db.read(|c| Ok((c.outbox_depth()?, c.backlog()?, c.latest_event_id()?)))
        })
        .await??;
        let totals = self.chat.registry().call_totals();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut plugins = Vec::with_capacity(totals.len());
        let mut previous = HashMap::with_capacity(totals.len());
        for (name, now) in totals {
            let since = match state.previous.get(&name) {
                Some(before) => now.latency.since(before),
                None => now.latency.clone(),
            };
            let ms = |q: f64| since.quantile(q).map(|s| s * 1000.0);
            plugins.push(PluginSample {
                p50_ms: ms(0.5),
                p99_ms: ms(0.99),
                name: name.clone(),
                calls: now.calls,
                failures: now.failures,
            });
            previous.insert(name, now.latency);
        }
        state.previous = previous;
        state.samples.push_back(Sample {
            at: now_ms(),
            outbox_depth: outbox + backlog.iter().map(|(_, n)| n).sum::<u64>(),
            events,
            plugins,
        });
        while state.samples.len() > SAMPLES_KEPT {
            state.samples.pop_front();
        }
        Ok(())
    }

    /// Every sample kept; takes one first when there is none yet.
    pub async fn view(&self) -> anyhow::Result<HistoryView> {
        let empty = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .samples
            .is_empty();
        if empty {
            self.sample().await?;
        }
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(HistoryView {
            interval_ms: u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX),
            samples: state.samples.iter().cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::chat::testkit::{Kit, example};
    use crate::chat::{CreateConversation, SendMessage};

    /// Long enough that the task's only sample in a test is its first, at once: the test takes the
    /// others itself, so nothing waits on real time.
    const NEVER: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn samples_count_events_outbox_and_each_intervals_calls() {
        let kit = Kit::new(&[example("message_stats")]);
        let (closing, closed) = watch::channel(false);
        let history = History::start(kit.chat.clone(), NEVER, closed);
        // The task's first sample, taken at once, lands before the test takes its own: otherwise, on a
        // loaded machine, it could land between the test's samples and take the interval's calls.
        let mut waited = Duration::ZERO;
        while history.state.lock().unwrap().samples.is_empty() {
            assert!(waited < Duration::from_secs(10), "no sample at start-up");
            tokio::time::sleep(Duration::from_millis(1)).await;
            waited += Duration::from_millis(1);
        }
        let first = history.view().await.unwrap();
        assert_eq!(first.interval_ms, 3_600_000);
        assert_eq!(first.samples.len(), 1, "{first:?}");
        let plugin = &first.samples[0].plugins[0];
        assert_eq!((plugin.name.as_str(), plugin.calls), ("message_stats", 0));
        assert_eq!((plugin.p50_ms, plugin.p99_ms), (None, None));

        // A message waits in the outbox (the kit has no dispatcher) until drained.
        let users = kit.users(&["alice"]).await;
        let conversation = kit
            .chat
            .create_conversation(&users[0], CreateConversation::default())
            .await
            .unwrap();
        let message = SendMessage {
            body: "hello".into(),
            ..Default::default()
        };
        kit.chat
            .send_message(&users[0], &conversation.id, message)
            .await
            .unwrap();
        history.sample().await.unwrap();
        let waiting = history.view().await.unwrap().samples.pop().unwrap();
        assert!(waiting.outbox_depth > 0, "{waiting:?}");
        assert!(waiting.events >= 2, "{waiting:?}");

        kit.drain();
        history.sample().await.unwrap();
        history.sample().await.unwrap();
        let samples = history.view().await.unwrap().samples;
        let [.., busy, quiet] = samples.as_slice() else {
            panic!("{samples:?}")
        };
        assert_eq!(busy.outbox_depth, 0, "{busy:?}");
        let (busy, quiet) = (&busy.plugins[0], &quiet.plugins[0]);
        assert!(busy.calls >= 1 && busy.failures == 0, "{busy:?}");
        assert!(busy.p50_ms.is_some() && busy.p99_ms.is_some(), "{busy:?}");
        // Totals carry on; latencies are only those of the interval's calls.
        assert_eq!(quiet.calls, busy.calls);
        assert_eq!((quiet.p50_ms, quiet.p99_ms), (None, None));

        closing.send_replace(true);
        for _ in 0..1000 {
            if Arc::strong_count(&history) == 1 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the sampler did not stop at shutdown");
    }

    #[tokio::test]
    async fn only_the_last_samples_are_kept() {
        let kit = Kit::new(&[]);
        let (_closing, closed) = watch::channel(false);
        let history = History::start(kit.chat.clone(), NEVER, closed);
        for _ in 0..SAMPLES_KEPT + 20 {
            history.sample().await.unwrap();
        }
        let samples = history.view().await.unwrap().samples;
        assert_eq!(samples.len(), SAMPLES_KEPT);
        assert!(samples.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
