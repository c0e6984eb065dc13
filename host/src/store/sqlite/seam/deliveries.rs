//! [`Deliveries`] on the writer: on a write transaction ([`Writing`]), and on a write that begins with its
//! first statement ([`Lazy`]: a dispatcher round,
//! [`Db::write_deliveries`](super::super::Db::write_deliveries)). Each method of `Writing` calls the function
//! of the same name in this backend's modules; each of `Lazy` begins the write (if it has not) and calls
//! `Writing`'s, except where there is nothing to write.

use super::super::writer::{Lazy, Writing};
use super::super::{dead_letters, outbox};
use crate::model::Millis;
use crate::store::records::{QueuedDelivery, StartedRow, StoredEvent};
use crate::store::{Deliveries, Result};

impl Deliveries for Writing<'_> {
    fn pending_event_ids(&self, limit: u32) -> Result<Vec<i64>> {
        outbox::pending_event_ids(self, limit)
    }

    fn fan_out_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>> {
        outbox::fan_out_event(self, event, plugins, now)
    }

    fn may_start_from_outbox(&self) -> bool {
        true
    }

    fn queue_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>> {
        outbox::queue_event(self, event, plugins, now)
    }

    fn leave_outbox(&self, event_ids: &[i64]) -> Result<()> {
        event_ids
            .iter()
            .try_for_each(|event_id| outbox::leave_outbox(self, *event_id))
    }

    fn requeue_delivery(
        &self,
        delivery: &QueuedDelivery,
        attempts: u32,
        last_error: Option<&str>,
    ) -> Result<()> {
        outbox::requeue_delivery(self, delivery, attempts, last_error)
    }

    fn start_head(&self, event_id: i64, plugin: &str, now: Millis) -> Result<Option<StartedRow>> {
        outbox::start_head(self, event_id, plugin, now)
    }

    fn start_next(
        &self,
        event_id: i64,
        plugin: &str,
        previous: i64,
        now: Millis,
    ) -> Result<Option<StartedRow>> {
        outbox::start_next(self, event_id, plugin, previous, now)
    }

    fn delivery_succeeded(&self, event_id: i64, plugin: &str) -> Result<bool> {
        outbox::delivery_succeeded(self, event_id, plugin)
    }

    fn delivery_failed(
        &self,
        event_id: i64,
        plugin: &str,
        error: &str,
        next_attempt_at: Millis,
    ) -> Result<()> {
        outbox::delivery_failed(self, event_id, plugin, error, next_attempt_at)
    }

    fn postpone_delivery(
        &self,
        event_id: i64,
        plugin: &str,
        next_attempt_at: Millis,
    ) -> Result<()> {
        outbox::postpone_delivery(self, event_id, plugin, next_attempt_at)
    }

    fn dead_letter(&self, event_id: i64, plugin: &str, error: &str, now: Millis) -> Result<i64> {
        dead_letters::dead_letter(self, event_id, plugin, error, now)
    }

    fn dead_letter_unqueued(
        &self,
        event_id: i64,
        plugin: &str,
        reason: &str,
        now: Millis,
    ) -> Result<i64> {
        dead_letters::dead_letter_unqueued(self, event_id, plugin, reason, now)
    }

    fn dead_letter_waiting(&self, plugin: &str, reason: &str, now: Millis) -> Result<usize> {
        dead_letters::dead_letter_waiting(self, plugin, reason, now)
    }
}

/// The writer is taken at the first statement; what asks nothing of the database takes nothing. The
/// methods with a default (`may_fan_out`, `start_runs`, `deliveries_succeeded`) keep it: they make no
/// statement for nothing to do, and otherwise call the methods below.
impl Deliveries for Lazy<'_> {
    fn pending_event_ids(&self, limit: u32) -> Result<Vec<i64>> {
        self.writing()?.pending_event_ids(limit)
    }

    fn fan_out_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>> {
        self.writing()?.fan_out_event(event, plugins, now)
    }

    fn may_start_from_outbox(&self) -> bool {
        true
    }

    fn queue_event(
        &self,
        event: &StoredEvent,
        plugins: &[String],
        now: Millis,
    ) -> Result<Vec<QueuedDelivery>> {
        self.writing()?.queue_event(event, plugins, now)
    }

    fn leave_outbox(&self, event_ids: &[i64]) -> Result<()> {
        if event_ids.is_empty() {
            return Ok(());
        }
        self.writing()?.leave_outbox(event_ids)
    }

    fn requeue_delivery(
        &self,
        delivery: &QueuedDelivery,
        attempts: u32,
        last_error: Option<&str>,
    ) -> Result<()> {
        self.writing()?
            .requeue_delivery(delivery, attempts, last_error)
    }

    fn start_head(&self, event_id: i64, plugin: &str, now: Millis) -> Result<Option<StartedRow>> {
        self.writing()?.start_head(event_id, plugin, now)
    }

    fn start_next(
        &self,
        event_id: i64,
        plugin: &str,
        previous: i64,
        now: Millis,
    ) -> Result<Option<StartedRow>> {
        self.writing()?.start_next(event_id, plugin, previous, now)
    }

    fn delivery_succeeded(&self, event_id: i64, plugin: &str) -> Result<bool> {
        self.writing()?.delivery_succeeded(event_id, plugin)
    }

    fn delivery_failed(
        &self,
        event_id: i64,
        plugin: &str,
        error: &str,
        next_attempt_at: Millis,
    ) -> Result<()> {
        self.writing()?
            .delivery_failed(event_id, plugin, error, next_attempt_at)
    }

    fn postpone_delivery(
        &self,
        event_id: i64,
        plugin: &str,
        next_attempt_at: Millis,
    ) -> Result<()> {
        self.writing()?
            .postpone_delivery(event_id, plugin, next_attempt_at)
    }

    fn dead_letter(&self, event_id: i64, plugin: &str, error: &str, now: Millis) -> Result<i64> {
        self.writing()?.dead_letter(event_id, plugin, error, now)
    }

    fn dead_letter_unqueued(
        &self,
        event_id: i64,
        plugin: &str,
        reason: &str,
        now: Millis,
    ) -> Result<i64> {
        self.writing()?
            .dead_letter_unqueued(event_id, plugin, reason, now)
    }

    fn dead_letter_waiting(&self, plugin: &str, reason: &str, now: Millis) -> Result<usize> {
        self.writing()?.dead_letter_waiting(plugin, reason, now)
    }
}
