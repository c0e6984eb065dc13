//! Users' push device tokens: register, list, remove (the caller's own only).

use serde::Deserialize;

use crate::model::User;
use crate::store::Device;

use super::{Chat, ChatError, fields};

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
        fields::PLATFORM.check(&input.platform)?;
        fields::DEVICE_TOKEN.check(&input.token)?;
        let user = actor.id.clone();
        self.blocking(move |chat| {
            Ok(chat
                .db()
                .write(|tx| tx.add_device(&user, &input.platform, &input.token, chat.now_ms()))?)
        })
        .await
    }

    /// The caller's registered devices.
    pub async fn list_devices(&self, actor: &User) -> Result<Vec<Device>, ChatError> {
        let user = actor.id.clone();
        self.blocking(move |chat| {
            Ok(chat
                .db()
                .read(|c| c.devices_of(std::slice::from_ref(&user)))?)
        })
        .await
    }

    /// Removes one of the caller's device tokens.
    pub async fn remove_device(&self, actor: &User, token: &str) -> Result<(), ChatError> {
        let (user, token) = (actor.id.clone(), token.to_owned());
        self.blocking(move |chat| {
            if chat.db().write(|tx| tx.remove_device(&user, &token))? {
                Ok(())
            } else {
                Err(ChatError::not_found("device", token))
            }
        })
        .await
    }
}
