//! What the admin API shows of a plugin's controls: whether it is enabled, and each declared setting with
//! its type, default and effective value (a secret's value is never shown).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::plugins::manifest::PluginSettings;
use crate::plugins::reload::ReloadReport;
use crate::plugins::settings::{SettingSpec, SettingType};

/// One declared setting, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SettingView {
    /// Its name (the key the plugin reads through `config`).
    pub name: String,
    /// `string`, `integer`, `number`, `boolean`, `enum` or `secret`.
    #[serde(rename = "type")]
    pub kind: SettingType,
    /// What it is for.
    pub description: Option<String>,
    /// Whether the plugin refuses to load without a value.
    pub required: bool,
    /// For `enum`: the allowed values.
    pub values: Vec<String>,
    /// The manifest's default, if any.
    pub default: Option<Value>,
    /// The admin's value, if one is set (`null` for a secret, whose value is never shown).
    pub value: Option<Value>,
    /// Whether an admin has set a value (for a secret: whether it is set at all).
    pub overridden: bool,
    /// The value the plugin reads: the admin's, else the default (`null` for a secret, and when there is
    /// neither).
    pub effective: Option<Value>,
}

/// A plugin's controls: `GET`, `PATCH /v1/admin/plugins/{name}/settings`, enable, disable and upload
/// answer with it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PluginControls {
    /// The plugin's name.
    pub name: String,
    /// `false` once an admin has disabled it.
    pub enabled: bool,
    /// The manifest's `version` (manifest v2), if it has one.
    pub version: Option<String>,
    /// The manifest's `description`, if it has one.
    pub description: Option<String>,
    /// The settings the manifest declares, by name.
    pub settings: Vec<SettingView>,
    /// On a server on its own, what the change did to the running plugin at once (`loaded`,
    /// `replaced`, `unchanged`, `disabled`, or `failed` with the reason: the earlier version, if any,
    /// keeps serving). `null` on a node of a cluster: the change is in the database and every node
    /// applies it within seconds (`GET /v1/admin/cluster` shows the rollout); and for `GET`.
    pub reload: Option<ReloadReport>,
}

impl PluginControls {
    /// The controls of `name` with `manifest` and the admin's `disabled` and `overrides`.
    pub fn new(
        name: &str,
        manifest: &PluginSettings,
        disabled: bool,
        overrides: &Map<String, Value>,
    ) -> Self {
        PluginControls {
            name: name.to_owned(),
            enabled: !disabled,
            version: manifest.version.clone(),
            description: manifest.description.clone(),
            settings: manifest
                .settings
                .iter()
                .map(|spec| setting_view(spec, overrides.get(&spec.name)))
                .collect(),
            reload: None,
        }
    }
}

fn setting_view(spec: &SettingSpec, value: Option<&Value>) -> SettingView {
    let secret = spec.kind == SettingType::Secret;
    let shown = value.filter(|_| !secret).cloned();
    SettingView {
        name: spec.name.clone(),
        kind: spec.kind,
        description: spec.description.clone(),
        required: spec.required,
        values: spec.values.clone(),
        default: spec.default.clone(),
        overridden: value.is_some(),
        effective: if secret {
            None
        } else {
            shown.clone().or_else(|| spec.default.clone())
        },
        value: shown,
    }
}
