//! Conveniences on the generated WIT records: parsing their JSON `metadata`, building a [`Decision`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{
    Conversation, Decision, Draft, Message, Modification, Origin, Participant, Role, User,
};

/// Adds `metadata_as` and `metadata_value` to records with a `metadata: json` field.
macro_rules! metadata_helpers {
    ($($record:ident),+) => {$(
        impl $record {
            /// Parses the `metadata` field (a JSON object as text) into a `T`, e.g. a struct deriving
            /// `serde::Deserialize` whose fields are all `Option` or `#[serde(default)]`.
            pub fn metadata_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
                serde_json::from_str(&self.metadata)
            }

            /// Parses the `metadata` field into a [`serde_json::Value`]; an empty string counts as `{}`.
            pub fn metadata_value(&self) -> Result<serde_json::Value, serde_json::Error> {
                if self.metadata.trim().is_empty() {
                    return Ok(serde_json::Value::Object(serde_json::Map::new()));
                }
                serde_json::from_str(&self.metadata)
            }
        }
    )+};
}

metadata_helpers!(User, Conversation, Message, Draft);

impl Decision {
    /// Store the draft as it is.
    pub fn allow() -> Self {
        Decision::Allow
    }

    /// Refuse the message; the sender gets an error carrying `reason`.
    pub fn reject(reason: impl Into<String>) -> Self {
        Decision::Reject(reason.into())
    }

    /// Hold the message for a moderator's review; the moderators see `reason`. Only its sender and the
    /// conversation's moderators and admins see it until it is approved or rejected. From
    /// `before_message_updated` it refuses the edit, as [`Decision::reject`] does.
    pub fn hold(reason: impl Into<String>) -> Self {
        Decision::Hold(reason.into())
    }

    /// Store the draft with a new body (metadata unchanged).
    pub fn modify_body(body: impl Into<String>) -> Self {
        Decision::Modify(Modification {
            body: Some(body.into()),
            metadata: None,
        })
    }

    /// Store the draft with new metadata, serialized from `metadata` (which should serialize to a JSON
    /// object); the body is unchanged.
    pub fn modify_metadata<T: Serialize + ?Sized>(metadata: &T) -> Result<Self, serde_json::Error> {
        Ok(Decision::Modify(Modification {
            body: None,
            metadata: Some(serde_json::to_string(metadata)?),
        }))
    }
}

impl Participant {
    /// The participating user's id (shorthand for `participant.user.id`).
    pub fn id(&self) -> &str {
        &self.user.id
    }

    /// Whether the participant is an admin of the conversation (`role == Role::Admin`).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the participant may ban members and review held messages: a moderator or an admin.
    pub fn can_moderate(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Moderator)
    }
}

impl Origin {
    /// How many plugin actions led to this message: 0 for a user, else the plugin origin's `depth`.
    pub fn depth(&self) -> u32 {
        match self {
            Origin::User => 0,
            Origin::Plugin(plugin) => plugin.depth,
        }
    }
}
