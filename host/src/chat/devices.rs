//! Users' push device tokens: register, list, remove (the caller's own only).

use serde::Deserialize;

use crate::model::User;
use crate::store::devices::{self, Device};

use super::{Chat, ChatError};

/// Longest device token accepted: APNs tokens are 64 hex characters, FCM tokens about 160; 4 KiB leaves
/// room for any push service without letting a client store blobs.
pub const MAX_DEVICE_TOKEN_BYTES: usize = 4096;

/// Longest platform name (`ios`, `android`, `web`, ...).
pub const MAX_PLATFORM_BYTES: usize = 32;

/// `POST /v1/me/devices`: a device of the caller that should get push notifications.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDevice {
    /// `ios`, `android`, `web`, ... (handed to the push gateway as is).
    pub platform: String,
    /// The push service's token for the device.
    pub token: String,
}

impl Chat {
    /// Registers (or re-registers) a device token of `actor`.
    pub async fn add_device(&self, actor: &User, input: AddDevice) -> Result<Device, ChatError> {
        if input.token.is_empty() || input.token.len() > MAX_DEVICE_TOKEN_BYTES {
            return Err(ChatError::invalid(
                "token",
                format!("token must be 1-{MAX_DEVICE_TOKEN_BYTES} bytes"),
            ));
        }
        let platform_ok = !input.platform.is_empty()
            && input.platform.len() <= MAX_PLATFORM_BYTES
            && input
                .platform
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !platform_ok {
            return Err(ChatError::invalid(
                "platform",
                format!("platform must be 1-{MAX_PLATFORM_BYTES} letters, digits, '_', '-' or '.'"),
            ));
        }
        let user = actor.id.clone();
        self.blocking(move |chat| {
            Ok(chat.db().write(|tx| {
                devices::add_device(
                    tx,
                    &user,
                    &input.platform,
                    &input.token,
                    crate::store::ids::now_ms(),
                )
            })?)
        })
        .await
    }

    /// The caller's registered devices.
    pub async fn list_devices(&self, actor: &User) -> Result<Vec<Device>, ChatError> {
        let user = actor.id.clone();
        self.blocking(move |chat| Ok(chat.db().read(|c| devices::devices_of(c, &[user]))?))
            .await
    }

    /// Removes one of the caller's device tokens.
    pub async fn remove_device(&self, actor: &User, token: &str) -> Result<(), ChatError> {
        let (user, token) = (actor.id.clone(), token.to_owned());
        self.blocking(move |chat| {
            if chat
                .db()
                .write(|tx| devices::remove_device(tx, &user, &token))?
            {
                Ok(())
            } else {
                Err(ChatError::not_found("device", token))
            }
        })
        .await
    }
}
