//! User administration and authentication: creating users, issuing, listing and revoking their tokens,
//! deactivating and reactivating them, and turning a presented bearer token into its user.
//!
//! ## Decisions
//! - The `bot.` id prefix belongs to plugins' bot users (see [`crate::store::limits::BOT_ID_PREFIX`]): an admin cannot
//!   create such a user, a bot gets no token, and a bot row is never an ordinary user's row.
//! - Deactivating a user refuses their tokens from the next request on and closes their live connections
//!   (the hub ends their event channel, so each WebSocket closes); their messages and memberships stay,
//!   and reactivating them makes the tokens they still hold work again (revoke those first if they may
//!   have leaked). A deactivated bot user cannot post or join: its plugin's calls are denied.
//! - Revoking a token also closes the user's live connections: a connection does not remember which
//!   token opened it, so all of them close and those with a token still valid reconnect (with `?since=`,
//!   losing nothing).

use crate::model::{Millis, TokenInfo, User, UserAccount};

use super::fields;
use super::inputs::{CreatedUser, IssueToken, IssuedToken, NewUser};
use super::{Chat, ChatError};

/// Why a bearer token was refused (HTTP 401, with this as the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// Never issued, revoked, or dropped after expiring.
    #[error("unknown or revoked token")]
    Unknown,
    /// Past its expiry.
    #[error(
        "this token expired at {expired_at} (milliseconds since the Unix epoch); ask an admin for a new one"
    )]
    Expired {
        /// When it expired.
        expired_at: Millis,
    },
    /// Its user is deactivated.
    #[error("user {user:?} is deactivated; an admin can reactivate them")]
    Deactivated {
        /// The user.
        user: String,
    },
    /// Its user is a bot (a row no longer issued; refused if one is left from an older version).
    #[error("user {user:?} is a plugin's bot user, which cannot sign in")]
    Bot {
        /// The bot user.
        user: String,
    },
}

impl Chat {
    /// Creates a user and their first token.
    pub async fn create_user(&self, input: NewUser) -> Result<CreatedUser, ChatError> {
        fields::USER_ID.check(&input.id)?;
        fields::USER_NAME.check(&input.name)?;
        fields::METADATA.check(&input.metadata)?;
        self.blocking(move |chat| {
            let new = crate::store::NewUser {
                id: input.id,
                name: input.name,
                metadata: input.metadata,
            };
            chat.commit(|tx, rec| {
                let user = tx.create_user(&new, rec.now)?;
                let issued = tx.issue_token(&user.id, None, rec.now)?;
                Ok(CreatedUser {
                    user,
                    token: issued.token,
                })
            })
        })
        .await
    }

    /// Issues another token for `user_id` (earlier ones stay valid), expiring after
    /// `input.expires_in_seconds` if given. Refused for bots (they act through their plugin) and for
    /// deactivated users (reactivate them first).
    pub async fn issue_token(
        &self,
        user_id: &str,
        input: IssueToken,
    ) -> Result<IssuedToken, ChatError> {
        if let Some(seconds) = input.expires_in_seconds {
            fields::TOKEN_LIFETIME.check(seconds)?;
        }
        let id = user_id.to_owned();
        self.blocking(move |chat| {
            chat.commit(|tx, rec| {
                let account = tx.get_account(&id)?;
                if account.bot {
                    return Err(ChatError::invalid(
                        "id",
                        format!(
                            "user {id:?} is a plugin's bot user: bots act through their plugin and get no \
                             login token"
                        ),
                    ));
                }
                if !account.active {
                    return Err(ChatError::Conflict(format!(
                        "user {id:?} is deactivated: reactivate them before issuing a token"
                    )));
                }
                let expires_at = input.expires_in_seconds.map(|s| {
                    let ms = Millis::try_from(s.saturating_mul(1000)).unwrap_or(Millis::MAX);
                    rec.now.saturating_add(ms)
                });
                let issued = tx.issue_token(&id, expires_at, rec.now)?;
                Ok(IssuedToken {
                    token: issued.token,
                    info: issued.info,
                })
            })
        })
        .await
    }

    /// The user a bearer token acts as, or why it is refused. Notes the token's use (at most once per
    /// [`LAST_USED_RESOLUTION_MS`](crate::store::limits::LAST_USED_RESOLUTION_MS)).
    pub async fn authenticate(&self, token: &str) -> Result<Result<User, TokenRefusal>, ChatError> {
        let token = token.to_owned();
        self.blocking(move |chat| chat.authenticate_blocking(&token))
            .await
    }

    /// Runs `f` as the user `token` belongs to, in the same blocking call that looks the token up:
    /// [`ChatError::Unauthenticated`] if it is refused. What the hottest routes use instead of
    /// [`Chat::authenticate`] then the operation, which cost two trips to the blocking pool.
    pub async fn as_user<T: Send + 'static>(
        &self,
        token: String,
        f: impl FnOnce(&Chat, &User) -> Result<T, ChatError> + Send + 'static,
    ) -> Result<T, ChatError> {
        self.blocking(move |chat| match chat.authenticate_blocking(&token)? {
            Ok(user) => f(chat, &user),
            Err(refusal) => Err(ChatError::Unauthenticated { refusal }),
        })
        .await
    }

    /// [`Chat::authenticate`], blocking.
    fn authenticate_blocking(&self, token: &str) -> Result<Result<User, TokenRefusal>, ChatError> {
        let now = self.now_ms();
        let Some(owner) = self.db.token_owner(token, now)? else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        if owner.bot {
            return Ok(Err(TokenRefusal::Bot {
                user: owner.user.id,
            }));
        }
        if owner.deactivated {
            return Ok(Err(TokenRefusal::Deactivated {
                user: owner.user.id,
            }));
        }
        if let Some(expired_at) = owner.expires_at.filter(|_| owner.expired(now)) {
            return Ok(Err(TokenRefusal::Expired { expired_at }));
        }
        if owner.use_is_news(now)
            && let Err(err) = self.db.write(|tx| tx.note_use(&owner.token_id, now))
        {
            // Bookkeeping only: the request goes on.
            tracing::warn!(user = %owner.user.id, "cannot note a token's use: {err}");
        }
        Ok(Ok(owner.user))
    }

    /// The user `id`.
    pub async fn get_user(&self, id: &str) -> Result<User, ChatError> {
        let id = id.to_owned();
        self.blocking(move |chat| Ok(chat.db.read(|c| c.get_user(&id))?))
            .await
    }

    /// The account of user `id`, as admins see it.
    pub async fn user_account(&self, id: &str) -> Result<UserAccount, ChatError> {
        let id = id.to_owned();
        self.blocking(move |chat| Ok(chat.db.read(|c| c.get_account(&id))?))
            .await
    }

    /// Users with an id after `after`, by id, at most `limit` (default and maximum
    /// [`fields::MAX_USERS_PAGE`]).
    pub async fn list_users(
        &self,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<Vec<UserAccount>, ChatError> {
        if let Some(limit) = limit {
            fields::USERS_LIMIT.check(limit.into())?;
        }
        let limit = limit.unwrap_or(fields::MAX_USERS_PAGE);
        self.blocking(move |chat| Ok(chat.db.read(|c| c.list_accounts(after.as_deref(), limit))?))
            .await
    }

    /// Deactivates user `id`: their tokens are refused from now on and their live connections close.
    /// Deactivating a deactivated user changes nothing.
    pub async fn deactivate_user(&self, id: &str) -> Result<UserAccount, ChatError> {
        let id = id.to_owned();
        self.blocking(move |chat| {
            let account = chat
                .db
                .write(|tx| tx.set_deactivated(&id, Some(chat.now_ms())))?;
            chat.hub.disconnect_user(&id);
            Ok(account)
        })
        .await
    }

    /// Reactivates user `id`: the tokens they hold work again. Refused for an ordinary user holding a
    /// bot's id (see [`Read::squatted_bot_ids`](crate::store::Read::squatted_bot_ids)).
    pub async fn reactivate_user(&self, id: &str) -> Result<UserAccount, ChatError> {
        let id = id.to_owned();
        self.blocking(move |chat| {
            chat.commit(|tx, _| {
                let account = tx.get_account(&id)?;
                if crate::store::limits::is_bot_id(&id) && !account.bot {
                    return Err(ChatError::invalid(
                        "id",
                        format!(
                            "user {id:?} holds an id reserved for plugins' bot users and stays deactivated"
                        ),
                    ));
                }
                Ok(tx.set_deactivated(&id, None)?)
            })
        })
        .await
    }

    /// The tokens of user `user_id`, newest first (never the secrets).
    pub async fn list_tokens(&self, user_id: &str) -> Result<Vec<TokenInfo>, ChatError> {
        let id = user_id.to_owned();
        self.blocking(move |chat| Ok(chat.db.read(|c| c.list_tokens(&id, chat.now_ms()))?))
            .await
    }

    /// Revokes token `token_id` of user `user_id`: it is refused from now on, and the user's live
    /// connections close (see the module docs). [`ChatError::NotFound`] if the user has no such token.
    pub async fn revoke_token(&self, user_id: &str, token_id: &str) -> Result<(), ChatError> {
        let (id, token_id) = (user_id.to_owned(), token_id.to_owned());
        self.blocking(move |chat| {
            let revoked = chat.db.write(|tx| {
                tx.get_account(&id)?;
                tx.revoke_token(&id, &token_id)
            })?;
            if !revoked {
                return Err(ChatError::not_found("token", token_id));
            }
            chat.hub.disconnect_user(&id);
            Ok(())
        })
        .await
    }
}
