//! `chathooks:plugin/events`: custom live events to a conversation's connected participants or to one
//! user's connections. The wire kind is `plugin.<plugin>.<type>`, so built-in kinds cannot be forged.

use std::sync::Arc;

use crate::plugins::bindings::events::{Error, Host};
use crate::plugins::powers::{
    CustomEvent, EventTarget, PluginPowers, Power, PowerError, PowerLimiter, ServicesSlot,
};

/// Longest event type: a name, not a payload.
pub const MAX_EVENT_TYPE_BYTES: usize = 64;

/// Largest event data, as JSON text. Live events are small signals (a poll's tally, a "bot is thinking"
/// indicator); 16 KiB matches what a message's metadata may carry.
pub const MAX_EVENT_DATA_BYTES: usize = 16 * 1024;

/// What `events` needs.
pub struct EventsCtx {
    plugin: Arc<str>,
    powers: Arc<PluginPowers>,
    services: ServicesSlot,
    /// The plugin's rate limits ([`Power::Events`]).
    limiter: Arc<PowerLimiter>,
}

impl EventsCtx {
    /// A context for `plugin`.
    pub(crate) fn new(
        plugin: Arc<str>,
        powers: Arc<PluginPowers>,
        services: ServicesSlot,
        limiter: Arc<PowerLimiter>,
    ) -> Self {
        EventsCtx {
            plugin,
            powers,
            services,
            limiter,
        }
    }

    fn send(&self, target: EventTarget, event_type: &str, data: &str) -> Result<(), Error> {
        if !self.powers.grants.events {
            return Err(Error::Denied(format!(
                "plugin {} is not granted `events` (add `events = true` under [grants] in its manifest)",
                self.plugin
            )));
        }
        let valid_type = !event_type.is_empty()
            && event_type.len() <= MAX_EVENT_TYPE_BYTES
            && event_type.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
            });
        if !valid_type {
            return Err(Error::Invalid(format!(
                "event type {event_type:?} must be 1-{MAX_EVENT_TYPE_BYTES} characters of a-z, 0-9, '_', '-', '.'"
            )));
        }
        if data.len() > MAX_EVENT_DATA_BYTES {
            return Err(Error::Invalid(format!(
                "event data is larger than {MAX_EVENT_DATA_BYTES} bytes"
            )));
        }
        let data = match serde_json::from_str::<serde_json::Value>(data) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => return Err(Error::Invalid("event data must be a JSON object".into())),
        };
        self.limiter
            .try_acquire(Power::Events)
            .map_err(|refused| Error::RateLimited(refused.retry_after_ms()))?;
        let event = CustomEvent {
            kind: format!("plugin.{}.{event_type}", self.plugin),
            target,
            data,
        };
        self.services.get().send_event(event).map_err(|e| match e {
            PowerError::NotFound(m) => Error::NotFound(m),
            PowerError::Denied(m) => Error::Denied(m),
            other => Error::Invalid(other.to_string()),
        })
    }
}

impl Host for EventsCtx {
    fn to_conversation(
        &mut self,
        conversation_id: String,
        event_type: String,
        data: String,
    ) -> Result<(), Error> {
        self.send(
            EventTarget::Conversation(conversation_id),
            &event_type,
            &data,
        )
    }

    fn to_user(&mut self, user_id: String, event_type: String, data: String) -> Result<(), Error> {
        self.send(EventTarget::User(user_id), &event_type, &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::powers::{Grants, Recorded, RecordingServices};

    fn ctx(events: bool) -> (EventsCtx, Arc<RecordingServices>) {
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let powers = PluginPowers {
            grants: Grants {
                events,
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        (
            EventsCtx::new(Arc::from("bot"), Arc::new(powers), slot, Arc::default()),
            services,
        )
    }

    #[test]
    fn kinds_are_namespaced_and_checked() {
        let (mut ctx, services) = ctx(true);
        assert!(
            ctx.to_conversation("c1".into(), "poll.updated".into(), "{\"a\":1}".into())
                .is_ok()
        );
        let recorded = services.take();
        assert!(
            matches!(&recorded[0], Recorded::Event(e) if e.kind == "plugin.bot.poll.updated"
            && e.target == EventTarget::Conversation("c1".into()))
        );
        for bad in ["", "Message.New", "a b", &"x".repeat(65)] {
            let err = ctx.to_user("u".into(), bad.into(), "{}".into());
            assert!(matches!(err, Err(Error::Invalid(_))), "{bad:?}: {err:?}");
        }
        let not_object = ctx.to_user("u".into(), "t".into(), "[1]".into());
        assert!(matches!(not_object, Err(Error::Invalid(_))));
        assert!(services.take().is_empty());
    }

    #[test]
    fn events_past_the_rate_limit_are_refused() {
        let (limiter, clock) = crate::plugins::powers::one_per_second(2);
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let powers = PluginPowers {
            grants: Grants {
                events: true,
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        let mut ctx = EventsCtx::new(Arc::from("bot"), Arc::new(powers), slot, limiter.clone());
        let mut send = || ctx.to_user("u".into(), "t".into(), "{}".into());
        assert!(send().is_ok() && send().is_ok());
        assert!(matches!(send(), Err(Error::RateLimited(1000))));
        clock.advance(std::time::Duration::from_secs(1));
        assert!(send().is_ok());
        assert_eq!(services.take().len(), 3);
        assert_eq!(limiter.refused().events, 1);
    }

    #[test]
    fn not_granted_is_denied() {
        let (mut ctx, services) = ctx(false);
        let err = ctx.to_user("u".into(), "t".into(), "{}".into());
        assert!(matches!(err, Err(Error::Denied(m)) if m.contains("events = true")));
        assert!(services.take().is_empty());
    }
}
