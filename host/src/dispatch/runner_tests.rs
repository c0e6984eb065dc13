//! The runner on its own, against a real SQLite store and the real compiled recorder plugin: which calls
//! of a run it makes and which it gives back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tokio::sync::mpsc;

use super::DispatchConfig;
use super::deliver::{self, DeliveryOutcome, Started};
use super::round::Finished;
use super::runner::Runner;
use super::tests::{create, recorder_calls, send};
use crate::chat::testkit::{Kit, fast_config, fixture};
use crate::clock::{Clock, ManualClock};
use crate::model::Millis;

/// A recorder, a conversation with one message per body, and a clock standing still.
struct Setup {
    kit: Kit,
    conversation: String,
    events: Vec<i64>,
    clock: Arc<ManualClock>,
}

async fn setup(bodies: &[&str]) -> Setup {
    let kit = Kit::new(&[fixture("recorder")]);
    let [a] = <[_; 1]>::try_from(kit.users(&["a"]).await).unwrap();
    let conversation = kit
        .chat
        .create_conversation(&a, create(&[]))
        .await
        .unwrap()
        .id;
    let mut events = Vec::new();
    for body in bodies {
        events.push(send(&kit.chat, &a, &conversation, body).await);
    }
    Setup {
        kit,
        conversation,
        events,
        clock: Arc::new(ManualClock::new()),
    }
}

impl Setup {
    /// The delivery of the `i`th message as a run's part (`follows`: not its head), leased until
    /// `leased_until` if given.
    fn started(&self, i: usize, follows: bool, leased_until: Option<Millis>) -> Started {
        let event = self.kit.db.read(|c| c.get_event(self.events[i])).unwrap();
        Started {
            event_id: self.events[i],
            call: deliver::hook_call(&event, 1),
            attempt: 1,
            plugin: self.kit.registry.get("recorder").unwrap(),
            conversation: self.conversation.clone(),
            follows,
            from_outbox: false,
            leased_until,
        }
    }

    /// Runs `run` as one run and waits for its reports.
    async fn run(&self, run: Vec<Started>) -> Vec<Finished> {
        let config = Arc::new(DispatchConfig {
            clock: self.clock.clone(),
            ..fast_config()
        });
        let (done, mut reports) = mpsc::unbounded_channel();
        let count = run.len();
        Runner::new(config, self.kit.kv.clone(), done).run(run);
        let mut got = Vec::new();
        while got.len() < count {
            got.push(reports.recv().await.unwrap());
        }
        got
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_takes_too_long_stops_its_run_and_the_rest_is_given_back() {
    // About a tenth of a second of arithmetic: over runner::STOPS_RUN.
    let s = setup(&["m0", "slow:100000000", "m2"]).await;
    let reports = s
        .run(vec![
            s.started(0, false, None),
            s.started(1, true, None),
            s.started(2, true, None),
        ])
        .await;
    let outcomes: Vec<(i64, DeliveryOutcome, bool)> = reports
        .into_iter()
        .map(|f| (f.event_id, f.outcome, f.ends_run))
        .collect();
    let now = s.clock.now_ms();
    assert_eq!(
        outcomes,
        [
            (s.events[0], DeliveryOutcome::Delivered, false),
            (s.events[1], DeliveryOutcome::Delivered, false),
            (s.events[2], DeliveryOutcome::Postponed { at: now }, true),
        ]
    );
    assert_eq!(
        recorder_calls(&s.kit),
        s.events[..2],
        "the third was not called"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_delivery_that_could_outlast_its_lease_is_given_back_not_called() {
    let s = setup(&["m0", "m1"]).await;
    let plugin = s.kit.registry.get("recorder").unwrap();
    let cap = crate::plugins::limits::wall_clock_cap(plugin.plugin.limits().after_hook_budget);
    let cap = i64::try_from(cap.as_millis()).unwrap();
    let now = s.clock.now_ms();
    // A run of two on a cluster node: the head's lease outlasts its call's cap, the next one's would
    // run out 1 ms before the cap (it waited behind other calls, say).
    let reports = s
        .run(vec![
            s.started(0, false, Some(now + cap)),
            s.started(1, true, Some(now + cap - 1)),
        ])
        .await;
    let outcomes: Vec<(i64, u32, DeliveryOutcome, bool)> = reports
        .into_iter()
        .map(|f| (f.event_id, f.attempt, f.outcome, f.ends_run))
        .collect();
    assert_eq!(
        outcomes,
        [
            (s.events[0], 1, DeliveryOutcome::Delivered, false),
            (s.events[1], 1, DeliveryOutcome::Postponed { at: now }, true),
        ]
    );
    assert_eq!(
        recorder_calls(&s.kit),
        s.events[..1],
        "the second was not called"
    );
}
