//! Operating plugins (admin key): upload a plugin, enable and disable it, read and change its settings.
//! The operations are [`crate::plugin_admin`]'s; this module parses and renders.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, parse_json};
use crate::plugin_admin::{AdminError, PluginControls};
use crate::plugins::settings::SettingError;
use crate::server::AppState;

/// Largest upload body, in bytes. A Python component is about 18 MB and a JavaScript one 12 MB
/// (TOOLCHAINS.md), which base64 makes 24 MB and 16 MB; 64 MiB leaves room for bigger interpreters while
/// bounding what one request can make the server buffer.
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_plugin))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .routes(routes!(plugin_settings, patch_plugin_settings))
        .routes(routes!(enable_plugin))
        .routes(routes!(disable_plugin))
}

/// `PUT /v1/admin/plugins/{name}`: a plugin's component and manifest.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadPlugin {
    /// The component (`.wasm`), base64 (standard alphabet, padded).
    #[schema(format = Byte)]
    pub wasm: String,
    /// The manifest's TOML text (`<name>.toml`); none: no manifest.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Values of settings the manifest declares, stored with the upload (over values set earlier): how
    /// a required setting (a secret, say) comes with the plugin that needs it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
}

/// Uploads plugin `{name}` (its component and manifest), checked as a load would be: a component of
/// this server's WIT, a valid manifest, every required setting with a value. A plugin that would not load
/// is refused with the loader's reason (422 `invalid`) and nothing changes: the running version keeps
/// serving. On a server on its own the files are written into the plugins folder and loaded at once
/// (`reload` says how); on a cluster node the plugin goes into the cluster's catalog and every node
/// loads it within seconds.
#[utoipa::path(put, path = "/v1/admin/plugins/{name}", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The plugin's name (its files are `<name>.wasm` and `<name>.toml`)")),
    request_body = UploadPlugin,
    responses((status = 200, description = "Installed (or, on a cluster node, put into the catalog)", body = PluginControls),
              (status = 400, description = "The body is not JSON", body = ErrorBody),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 413, description = "The body is over 64 MiB", body = ErrorBody),
              (status = 422, description = "A bad name, base64, manifest or component, or a required setting without a value; the message says which", body = ErrorBody),
              (status = 503, description = "The database cannot be reached (`unavailable`)", body = ErrorBody)))]
pub async fn upload_plugin(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PluginControls>, ApiError> {
    // Read here rather than by `ApiJson`, whose 413 names the server's usual body limit.
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(MAX_UPLOAD_BYTES)
        } else {
            ApiError::bad_request(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    })?;
    let body: UploadPlugin = parse_json(&body)?;
    let wasm = decode_base64(&body.wasm)
        .map_err(|message| ApiError::invalid("wasm", format!("not base64: {message}")))?;
    let controls = state
        .plugin_admin
        .upload(
            &name,
            wasm,
            body.manifest,
            body.settings.unwrap_or_default(),
        )
        .await
        .map_err(api_error)?;
    state.chat.dispatch().wake();
    Ok(Json(controls))
}

/// Plugin `{name}`'s controls: whether it is enabled, and the settings its manifest declares with their
/// defaults and the values an admin set (a secret's value is never shown).
#[utoipa::path(get, path = "/v1/admin/plugins/{name}/settings", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The plugin's name")),
    responses((status = 200, description = "The plugin's controls", body = PluginControls),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No plugin of that name", body = ErrorBody),
              (status = 409, description = "The plugin's manifest is not valid", body = ErrorBody),
              (status = 503, description = "The database cannot be reached (`unavailable`)", body = ErrorBody)))]
pub async fn plugin_settings(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<PluginControls>, ApiError> {
    let controls = state.plugin_admin.controls(&name).await;
    Ok(Json(controls.map_err(api_error)?))
}

/// Sets values of plugin `{name}`'s settings: a JSON object of setting names and values, each checked
/// against the type its manifest declares (`null` removes the admin's value: back to the default).
/// Settings not named keep their values. The values are stored (they survive restarts) and the plugin is
/// reloaded with them; a required setting still without a value keeps it from loading (`reload` says so).
#[utoipa::path(patch, path = "/v1/admin/plugins/{name}/settings", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The plugin's name")),
    request_body(content = Object, description = "Setting names and their new values (`null`: back to the default)"),
    responses((status = 200, description = "Stored and applied", body = PluginControls),
              (status = 400, description = "The body is not JSON", body = ErrorBody),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No plugin of that name", body = ErrorBody),
              (status = 409, description = "The plugin's manifest is not valid", body = ErrorBody),
              (status = 422, description = "A setting the manifest does not declare, or a value of the wrong type; the message names it", body = ErrorBody),
              (status = 503, description = "The database cannot be reached (`unavailable`)", body = ErrorBody)))]
pub async fn patch_plugin_settings(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(patch): ApiJson<Map<String, Value>>,
) -> Result<Json<PluginControls>, ApiError> {
    let controls = state.plugin_admin.patch_settings(&name, patch).await;
    let controls = controls.map_err(api_error)?;
    state.chat.dispatch().wake();
    Ok(Json(controls))
}

/// Enables plugin `{name}` (it was disabled): it is loaded again. Kept across restarts.
#[utoipa::path(post, path = "/v1/admin/plugins/{name}/enable", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The plugin's name")),
    responses((status = 200, description = "Enabled; `reload` says whether it loaded", body = PluginControls),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No plugin of that name", body = ErrorBody),
              (status = 409, description = "The plugin's manifest is not valid", body = ErrorBody),
              (status = 503, description = "The database cannot be reached (`unavailable`)", body = ErrorBody)))]
pub async fn enable_plugin(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<PluginControls>, ApiError> {
    set_disabled(&state, &name, false).await
}

/// Disables plugin `{name}`: it is unloaded (its file stays), its hooks are not called and no events are
/// owed to it; deliveries already waiting for it are kept for 10 minutes, then become dead letters (as
/// for a plugin whose file was removed). Kept across restarts, until it is enabled.
#[utoipa::path(post, path = "/v1/admin/plugins/{name}/disable", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The plugin's name")),
    responses((status = 200, description = "Disabled", body = PluginControls),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No plugin of that name", body = ErrorBody),
              (status = 409, description = "The plugin's manifest is not valid", body = ErrorBody),
              (status = 503, description = "The database cannot be reached (`unavailable`)", body = ErrorBody)))]
pub async fn disable_plugin(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<PluginControls>, ApiError> {
    set_disabled(&state, &name, true).await
}

async fn set_disabled(
    state: &AppState,
    name: &str,
    disabled: bool,
) -> Result<Json<PluginControls>, ApiError> {
    let controls = state.plugin_admin.set_disabled(name, disabled).await;
    let controls = controls.map_err(api_error)?;
    state.chat.dispatch().wake();
    Ok(Json(controls))
}

/// The API's answer to an [`AdminError`].
fn api_error(error: AdminError) -> ApiError {
    match error {
        AdminError::NotFound { .. } => ApiError::not_found(error.to_string()),
        AdminError::Invalid { field, message } => ApiError::invalid(&field, message),
        AdminError::Setting(
            SettingError::Unknown { ref key, .. }
            | SettingError::WrongType { ref key, .. }
            | SettingError::Missing { ref key, .. },
        ) => ApiError::invalid(&format!("settings.{key}"), error.to_string()),
        AdminError::Refused { .. } => ApiError::invalid("", error.to_string()),
        AdminError::BadManifest { .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string())
        }
        AdminError::Store(store) => store.into(),
        AdminError::Internal(error) => ApiError::internal(format!("{error:#}")),
    }
}

/// Decodes standard, padded base64 (RFC 4648 section 4); whitespace is ignored, so a wrapped encoding
/// (`base64` without `-w0`) is fine.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_wrapped_text_and_refuses_garbage() {
        assert_eq!(decode_base64("").as_deref(), Ok(&b""[..]));
        assert_eq!(decode_base64("AGFzbQ==").as_deref(), Ok(&b"\0asm"[..]));
        assert_eq!(decode_base64("YW\nJjZA==").as_deref(), Ok(&b"abcd"[..]));
        assert!(decode_base64("YWJ").is_err());
        assert!(decode_base64("YW*j").is_err());
    }
}
