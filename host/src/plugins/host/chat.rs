//! `chathooks:plugin/chat`: act as the plugin's bot user. Each call checks its grant, then goes to the
//! runtime's services, which run the same chat operations as the REST API.
//!
//! The depth of a post (the loop guard) is one more than the depth of the message the current call is
//! about: `ChatCtx::set_depth` is called before every hook call with the triggering message's depth.

use std::sync::Arc;

use crate::events::MAX_HOOK_DEPTH;
use crate::plugins::bindings::chat::{Error, Host};
use crate::plugins::bindings::types::{Conversation, Message, Participant};
use crate::plugins::powers::{
    BotPost, PluginPowers, Power, PowerError, PowerLimiter, RateLimited, ServicesSlot,
};

/// Most messages `recent-messages` returns: a plugin wants context, not the history.
pub const MAX_RECENT_MESSAGES: u32 = 100;

/// What `chat` needs: the plugin's name, grants and rate limits, the services, and the depth of the current
/// call.
pub struct ChatCtx {
    plugin: Arc<str>,
    powers: Arc<PluginPowers>,
    services: ServicesSlot,
    /// The plugin's rate limits; posts and joins share [`Power::Posts`].
    limiter: Arc<PowerLimiter>,
    /// The loop-guard depth of the message the running call is about (0: a user's, or no message).
    depth: u32,
    /// Where time spent in chat operations is recorded (they run other plugins' hooks).
    wait: super::HostWait,
}

impl ChatCtx {
    /// A context for `plugin`.
    pub(crate) fn new(
        plugin: Arc<str>,
        powers: Arc<PluginPowers>,
        services: ServicesSlot,
        limiter: Arc<PowerLimiter>,
        wait: super::HostWait,
    ) -> Self {
        ChatCtx {
            plugin,
            powers,
            services,
            limiter,
            depth: 0,
            wait,
        }
    }

    /// Sets the depth of the message the next call is about.
    pub(crate) fn set_depth(&mut self, depth: u32) {
        self.depth = depth;
    }

    /// The participants of `conversation_id` as the services see them now, or none if they cannot say
    /// (the conversation is gone): the `participants` of a hook call to an old component.
    pub(crate) fn participants_now(&self, conversation_id: &str) -> Vec<Participant> {
        self.services
            .get()
            .participants(&self.plugin, conversation_id)
            .unwrap_or_default()
    }

    /// `post-message` and `post-reply`: checks, then the services' post.
    fn post(
        &mut self,
        conversation_id: String,
        parent_id: Option<String>,
        body: String,
        metadata: Option<String>,
    ) -> Result<Message, Error> {
        self.require(self.powers.grants.chat_post, "chat_post")?;
        let depth = self.depth.saturating_add(1);
        if depth > MAX_HOOK_DEPTH {
            return Err(Error::TooDeep(depth));
        }
        let metadata = match metadata {
            None => serde_json::json!({}),
            Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                _ => return Err(Error::Rejected("metadata must be a JSON object".into())),
            },
        };
        rate_limit(&self.limiter)?;
        let started = self.wait.start();
        let posted = self.services.get().post_message(BotPost {
            plugin: self.plugin.to_string(),
            conversation_id,
            body,
            metadata,
            depth,
            parent_id,
        });
        self.wait.record(started);
        posted.map_err(guest_error)
    }

    fn require(&self, granted: bool, grant: &str) -> Result<(), Error> {
        if granted {
            Ok(())
        } else {
            Err(Error::Denied(format!(
                "plugin {} is not granted `{grant}` (add `{grant} = true` under [grants] in its manifest)",
                self.plugin
            )))
        }
    }
}

/// Takes a token of the posts' rate limit; a refusal is `rate-limited` (and not a host wait: it returns
/// before the wait is timed).
fn rate_limit(limiter: &PowerLimiter) -> Result<(), Error> {
    limiter
        .try_acquire(Power::Posts)
        .map_err(|refused: RateLimited| Error::RateLimited(refused.retry_after_ms()))
}

/// The bot user id of `plugin`.
pub fn bot_id(plugin: &str) -> String {
    format!("bot.{plugin}")
}

fn guest_error(err: PowerError) -> Error {
    match err {
        PowerError::Denied(m) => Error::Denied(m),
        PowerError::NotFound(m) => Error::NotFound(m),
        PowerError::Rejected(m) => Error::Rejected(m),
        PowerError::TooDeep(d) => Error::TooDeep(d),
        PowerError::Failed(m) => Error::Failed(m),
    }
}

impl Host for ChatCtx {
    fn bot_id(&mut self) -> String {
        bot_id(&self.plugin)
    }

    fn post_message(
        &mut self,
        conversation_id: String,
        body: String,
        metadata: Option<String>,
    ) -> Result<Message, Error> {
        self.post(conversation_id, None, body, metadata)
    }

    fn post_reply(
        &mut self,
        parent_id: String,
        body: String,
        metadata: Option<String>,
    ) -> Result<Message, Error> {
        // The services find the conversation from the parent; an unknown parent is `not-found`.
        self.post(String::new(), Some(parent_id), body, metadata)
    }

    fn join_conversation(&mut self, conversation_id: String) -> Result<(), Error> {
        self.require(self.powers.grants.chat_join, "chat_join")?;
        rate_limit(&self.limiter)?;
        let started = self.wait.start();
        let joined = self
            .services
            .get()
            .join_conversation(&self.plugin, &conversation_id);
        self.wait.record(started);
        joined.map_err(guest_error)
    }

    fn get_conversation(&mut self, conversation_id: String) -> Result<Conversation, Error> {
        self.require(self.powers.grants.chat_read, "chat_read")?;
        self.services
            .get()
            .conversation(&self.plugin, &conversation_id)
            .map_err(guest_error)
    }

    fn recent_messages(
        &mut self,
        conversation_id: String,
        limit: u32,
    ) -> Result<Vec<Message>, Error> {
        self.require(self.powers.grants.chat_read, "chat_read")?;
        self.services
            .get()
            .recent_messages(
                &self.plugin,
                &conversation_id,
                limit.clamp(1, MAX_RECENT_MESSAGES),
            )
            .map_err(guest_error)
    }

    fn participants(&mut self, conversation_id: String) -> Result<Vec<Participant>, Error> {
        self.services
            .get()
            .participants(&self.plugin, &conversation_id)
            .map_err(guest_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::powers::{Grants, Recorded, RecordingServices};

    fn ctx(grants: Grants) -> (ChatCtx, Arc<RecordingServices>) {
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let powers = PluginPowers {
            grants,
            ..PluginPowers::default()
        };
        let ctx = ChatCtx::new(
            Arc::from("bot"),
            Arc::new(powers),
            slot,
            Arc::default(),
            super::super::HostWait::default(),
        );
        (ctx, services)
    }

    #[test]
    fn posts_one_level_deeper_until_the_loop_guard() {
        let grants = Grants {
            chat_post: true,
            ..Grants::default()
        };
        let (mut ctx, services) = ctx(grants);
        assert_eq!(ctx.bot_id(), "bot.bot");
        ctx.set_depth(2);
        let posted = ctx.post_message("c1".into(), "hi".into(), None);
        assert!(posted.is_ok());
        assert!(matches!(&services.take()[0], Recorded::Post(p) if p.depth == 3));
        ctx.set_depth(MAX_HOOK_DEPTH);
        let refused = ctx.post_message("c1".into(), "hi".into(), None);
        assert!(matches!(refused, Err(Error::TooDeep(4))));
        ctx.set_depth(0);
        let bad = ctx.post_message("c1".into(), "hi".into(), Some("[]".into()));
        assert!(matches!(bad, Err(Error::Rejected(_))));
        assert!(services.take().is_empty());
    }

    #[test]
    fn posts_and_joins_share_a_rate_limit() {
        let (limiter, clock) = crate::plugins::powers::one_per_second(3);
        let services = Arc::new(RecordingServices::default());
        let slot = ServicesSlot::default();
        slot.install(services.clone());
        let powers = PluginPowers {
            grants: Grants {
                chat_post: true,
                chat_join: true,
                chat_read: true,
                ..Grants::default()
            },
            ..PluginPowers::default()
        };
        let mut ctx = ChatCtx::new(
            Arc::from("bot"),
            Arc::new(powers),
            slot,
            limiter.clone(),
            super::super::HostWait::default(),
        );
        assert!(ctx.join_conversation("c1".into()).is_ok());
        for _ in 0..2 {
            assert!(ctx.post_message("c1".into(), "hi".into(), None).is_ok());
        }
        let refused = ctx.post_message("c1".into(), "hi".into(), None);
        assert!(
            matches!(refused, Err(Error::RateLimited(1000))),
            "{refused:?}"
        );
        let refused = ctx.join_conversation("c1".into());
        assert!(
            matches!(refused, Err(Error::RateLimited(1000))),
            "{refused:?}"
        );
        // Reads are not limited.
        assert!(ctx.get_conversation("c1".into()).is_ok());
        clock.advance(std::time::Duration::from_millis(400));
        let refused = ctx.post_message("c1".into(), "hi".into(), None);
        assert!(
            matches!(refused, Err(Error::RateLimited(600))),
            "{refused:?}"
        );
        clock.advance(std::time::Duration::from_millis(600));
        assert!(ctx.post_message("c1".into(), "hi".into(), None).is_ok());
        assert_eq!(
            services.take().len(),
            4,
            "refused calls never reach the services"
        );
        assert_eq!(limiter.refused().posts, 3);
    }

    #[test]
    fn each_call_needs_its_grant() {
        let (mut ctx, services) = ctx(Grants {
            chat_read: true,
            ..Grants::default()
        });
        let post = ctx.post_message("c1".into(), "hi".into(), None);
        assert!(matches!(post, Err(Error::Denied(m)) if m.contains("chat_post")));
        let join = ctx.join_conversation("c1".into());
        assert!(matches!(join, Err(Error::Denied(m)) if m.contains("chat_join")));
        assert!(ctx.get_conversation("c1".into()).is_ok());
        assert!(ctx.recent_messages("c1".into(), 1000).is_ok());
        assert!(services.take().is_empty());
    }
}
