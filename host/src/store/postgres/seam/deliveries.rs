//! [`Deliveries`] on a PostgreSQL transaction: the dispatcher's changes, each running the query function
//! of the same name to completion (see the parent module). A round's transaction begins with its first
//! statement, so the methods that have nothing to do make none.

use super::super::{dead_letters, leases, outbox};
use super::PgConn;
use crate::model::Millis;
use crate::store::records::{QueuedDelivery, RunStart, StartedRow, StoredEvent};
use crate::store::{Deliveries, Result, StoreError};

impl Deliveries for PgConn<'_, '_> {
    fn pending_event_ids(&self, limit: u32) -> Result<Vec<i64>> {
        self.run(|tx| outbox::pending_event_ids(tx, limit))
    }

    fn may_fan_out(&self) -> Result<bool> {
        match self.cluster {
            Some(holder) => self.run(|tx| leases::claim_fan_out(tx, holder)),
            None => Ok(true),
        }
    }

    fn fan_out_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>> {
        if self.cluster.is_some() {
            return self.run(|tx| leases::fan_out_event(tx, event, plugins, now));
        }
        self.run(|tx| outbox::fan_out_event(tx, event, plugins, now))
    }

    fn fan_out_events(
        &self,
        events: &[(&StoredEvent, &[String])],
        now: Millis,
    ) -> Result<Vec<Vec<QueuedDelivery>>> {
        // Nothing to fan out: no statement, so a round's transaction does not begin for it.
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if self.cluster.is_some() {
            return self.run(|tx| leases::fan_out_events(tx, events, now));
        }
        self.run(|tx| outbox::fan_out_events(tx, events, now))
    }

    fn may_start_from_outbox(&self) -> bool {
        self.cluster.is_none()
    }

    fn queue_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>> {
        if self.cluster.is_some() {
            return Err(StoreError::Invalid(
                "a node of a cluster fans every event out with fan_out_event: its starts are leases"
                    .to_owned(),
            ));
        }
        self.run(|tx| outbox::queue_event(tx, event, plugins, now))
    }

    fn leave_outbox(&self, event_ids: &[i64]) -> Result<()> {
        // Nothing to write: no statement, so a round's transaction does not begin for it.
        if event_ids.is_empty() {
            return Ok(());
        }
        self.run(|tx| outbox::leave_outbox(tx, event_ids))
    }

    fn requeue_delivery(
        &self,
        delivery: &QueuedDelivery,
        attempts: u32,
        last_error: Option<&str>,
    ) -> Result<()> {
        self.run(|tx| outbox::requeue_delivery(tx, delivery, attempts, last_error))
    }

    fn start_head(&self, event_id: i64, plugin: &str, now: Millis) -> Result<Option<StartedRow>> {
        if let Some(holder) = self.cluster {
            return self.run(|tx| leases::start_head(tx, holder, event_id, plugin, now));
        }
        self.run(|tx| outbox::start_head(tx, event_id, plugin, now))
    }

    fn start_next(
        &self,
        event_id: i64,
        plugin: &str,
        previous: i64,
        now: Millis,
    ) -> Result<Option<StartedRow>> {
        if let Some(holder) = self.cluster {
            return self.run(|tx| leases::start_next(tx, holder, event_id, plugin, previous, now));
        }
        self.run(|tx| outbox::start_next(tx, event_id, plugin, previous, now))
    }

    fn start_runs(&self, runs: &[RunStart<'_>], now: Millis) -> Result<Vec<Vec<StartedRow>>> {
        // Nothing to start: no statement, so a round's transaction does not begin for it.
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(holder) = self.cluster {
            return self.run(|tx| leases::start_runs(tx, holder, runs, now));
        }
        self.run(|tx| outbox::start_runs(tx, runs, now))
    }

    fn delivery_succeeded(&self, event_id: i64, plugin: &str) -> Result<bool> {
        if let Some(holder) = self.cluster {
            return self.run(|tx| leases::delivery_succeeded(tx, holder, event_id, plugin));
        }
        self.run(|tx| outbox::delivery_succeeded(tx, event_id, plugin))
    }

    fn deliveries_succeeded(&self, deliveries: &[(i64, &str)]) -> Result<Vec<bool>> {
        // Nothing to remove: no statement, so a round's transaction does not begin for it.
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let lessee = self.cluster.map(|h| h.node_id.as_str());
        self.run(|tx| outbox::deliveries_succeeded(tx, deliveries, lessee))
    }

    fn delivery_failed(
        &self,
        event_id: i64,
        plugin: &str,
        error: &str,
        next_attempt_at: Millis,
    ) -> Result<()> {
        if let Some(holder) = self.cluster {
            return self.run(|tx| {
                leases::delivery_returned(
                    tx,
                    holder,
                    event_id,
                    plugin,
                    Some(error),
                    next_attempt_at,
                )
            });
        }
        self.run(|tx| outbox::delivery_failed(tx, event_id, plugin, error, next_attempt_at))
    }

    fn postpone_delivery(
        &self,
        event_id: i64,
        plugin: &str,
        next_attempt_at: Millis,
    ) -> Result<()> {
        if let Some(holder) = self.cluster {
            return self.run(|tx| {
                leases::delivery_returned(tx, holder, event_id, plugin, None, next_attempt_at)
            });
        }
        self.run(|tx| outbox::postpone_delivery(tx, event_id, plugin, next_attempt_at))
    }

    fn postpone_deliveries(&self, deliveries: &[(i64, &str, Millis)]) -> Result<Vec<bool>> {
        // Nothing to put back: no statement, so a round's transaction does not begin for it.
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let holder = self.cluster.map(|h| h.node_id.as_str());
        self.run(|tx| outbox::postpone_deliveries(tx, deliveries, holder))
    }

    fn dead_letter(&self, event_id: i64, plugin: &str, error: &str, now: Millis) -> Result<i64> {
        self.run(|tx| dead_letters::dead_letter(tx, event_id, plugin, error, now))
    }

    fn dead_letter_unqueued(
        &self,
        event_id: i64,
        plugin: &str,
        reason: &str,
        now: Millis,
    ) -> Result<i64> {
        self.run(|tx| dead_letters::dead_letter_unqueued(tx, event_id, plugin, reason, now))
    }

    fn dead_letter_waiting(&self, plugin: &str, reason: &str, now: Millis) -> Result<usize> {
        if let Some(holder) = self.cluster {
            return self.run(|tx| leases::dead_letter_waiting(tx, holder, plugin, reason, now));
        }
        self.run(|tx| dead_letters::dead_letter_waiting(tx, plugin, reason, now))
    }
}
