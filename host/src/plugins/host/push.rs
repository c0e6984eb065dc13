//! `chathooks:plugin/push`: queue a push notification. Checked here; delivered by the runtime's services
//! (live connections and the configured push gateway).

use std::sync::Arc;

use crate::plugins::bindings::push::{Error, Host, Notification};
use crate::plugins::powers::{
    PluginPowers, Power, PowerError, PowerLimiter, PushNotification, ServicesSlot,
};

/// Most users one notification may name: a conversation's worth, not a broadcast to everyone.
pub const MAX_PUSH_USERS: usize = 1000;

/// Longest title plus body: push services cap a payload at about 4 KiB, data included.
pub const MAX_PUSH_TEXT_BYTES: usize = 2048;

/// Largest `data`, as JSON text (the rest of the push services' 4 KiB).
pub const MAX_PUSH_DATA_BYTES: usize = 2048;

/// What `push` needs.
pub struct PushCtx {
    plugin: Arc<str>,
    powers: Arc<PluginPowers>,
    services: ServicesSlot,
    /// The plugin's rate limits ([`Power::Pushes`]).
    limiter: Arc<PowerLimiter>,
}

impl PushCtx {
    /// A context for `plugin`.
    pub(crate) fn new(
        plugin: Arc<str>,
        powers: Arc<PluginPowers>,
        services: ServicesSlot,
        limiter: Arc<PowerLimiter>,
    ) -> Self {
        PushCtx {
            plugin,
            powers,
            services,
            limiter,
        }
    }
}

impl Host for PushCtx {
    fn send(&mut self, n: Notification) -> Result<(), Error> {
        if !self.powers.grants.push {
            return Err(Error::Denied(format!(
                "plugin {} is not granted `push` (add `push = true` under [grants] in its manifest)",
                self.plugin
            )));
        }
        if n.user_ids.is_empty() || n.user_ids.len() > MAX_PUSH_USERS {
            return Err(Error::Invalid(format!(
                "a notification names 1-{MAX_PUSH_USERS} users"
            )));
        }
        if n.title.len() + n.body.len() > MAX_PUSH_TEXT_BYTES {
            return Err(Error::Invalid(format!(
                "title and body are longer than {MAX_PUSH_TEXT_BYTES} bytes"
            )));
        }
        if n.data.len() > MAX_PUSH_DATA_BYTES {
            return Err(Error::Invalid(format!(
                "data is larger than {MAX_PUSH_DATA_BYTES} bytes"
            )));
        }
        let data = if n.data.trim().is_empty() {
            serde_json::json!({})
        } else {
            match serde_json::from_str::<serde_json::Value>(&n.data) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                _ => return Err(Error::Invalid("data must be a JSON object".into())),
            }
        };
        self.limiter
            .try_acquire(Power::Pushes)
            .map_err(|refused| Error::RateLimited(refused.retry_after_ms()))?;
        let mut user_ids = n.user_ids;
        user_ids.sort();
        user_ids.dedup();
        self.services
            .get()
            .push(PushNotification {
                plugin: self.plugin.to_string(),
                user_ids,
                title: n.title,
                body: n.body,
                badge: n.badge,
                data,
            })
            .map_err(|e| match e {
                PowerError::Denied(m) => Error::Denied(m),
                PowerError::Rejected(m) | PowerError::NotFound(m) => Error::Invalid(m),
                other => Error::Failed(other.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::powers::{Grants, Recorded, RecordingServices};

    fn notification(users: &[&str], data: &str) -> Notification {
        Notification {
            user_ids: users.iter().map(|u| (*u).to_owned()).collect(),
            title: "t".into(),
            body: "b".into(),
            badge: Some(1),
            data: data.into(),
        }
    }

    #[test]
    fn pushes_past_the_rate_limit_are_refused() {
        let (limiter, clock) = crate::plugins::powers::one_per_second(1);
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let granted = PluginPowers {
            grants: Grants {
                push: true,
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        let mut ctx = PushCtx::new(Arc::from("p"), Arc::new(granted), slot, limiter.clone());
        assert!(ctx.send(notification(&["a"], "{}")).is_ok());
        assert!(matches!(
            ctx.send(notification(&["a"], "{}")),
            Err(Error::RateLimited(1000))
        ));
        clock.advance(std::time::Duration::from_secs(1));
        assert!(ctx.send(notification(&["a"], "{}")).is_ok());
        assert_eq!(services.take().len(), 2);
        assert_eq!(limiter.refused().pushes, 1);
    }

    #[test]
    fn checked_deduplicated_and_granted() {
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let granted = PluginPowers {
            grants: Grants {
                push: true,
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        let mut ctx = PushCtx::new(
            Arc::from("p"),
            Arc::new(granted),
            slot.clone(),
            Arc::default(),
        );
        assert!(ctx.send(notification(&["b", "a", "b"], "")).is_ok());
        assert!(
            matches!(&services.take()[0], Recorded::Push(n) if n.user_ids == ["a", "b"]
            && n.data == serde_json::json!({}))
        );
        assert!(matches!(
            ctx.send(notification(&[], "{}")),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            ctx.send(notification(&["a"], "7")),
            Err(Error::Invalid(_))
        ));
        let mut denied = PushCtx::new(
            Arc::from("p"),
            Arc::new(PluginPowers::default()),
            slot,
            Arc::default(),
        );
        assert!(matches!(
            denied.send(notification(&["a"], "{}")),
            Err(Error::Denied(_))
        ));
        assert!(services.take().is_empty());
    }
}
