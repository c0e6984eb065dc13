//! Admin routes (bearer admin key): plugins (list, reload) and dead letters. Users and their tokens are in
//! [`super::admin_users`].

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use crate::chat::admin::DeadLetterInfo;
use crate::chat::fields;
use crate::dispatch::DispatchHandle;
use crate::plugins::registry::{PluginStatus, Registry};
use crate::plugins::reload::ReloadReport;
use crate::server::AppState;
use crate::store::Db;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plugins))
        .routes(routes!(reload_plugins))
        .routes(routes!(dead_letters))
        .routes(routes!(replay_dead_letter))
}

/// `GET /v1/admin/dead-letters?after=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterPage {
    /// Only dead letters with a larger id (the last id of the previous page).
    #[serde(default)]
    pub after: i64,
    /// Page size (1-500, default 500).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Every plugin: name, version, hooks, state (active, failing, disabled, load-error), call counters,
/// latency, limits, KV usage and deliveries waiting for it.
#[utoipa::path(get, path = "/v1/admin/plugins", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, description = "The plugins, by name", body = Vec<PluginStatus>),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody)))]
pub async fn plugins(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<PluginStatus>>, ApiError> {
    let (db, registry) = (state.db().clone(), state.chat.registry().clone());
    let dispatch = state.chat.dispatch().clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || statuses(&db, &registry, &dispatch)).await??,
    ))
}

/// The registry's view of every plugin with its pending deliveries: those with a row, and those owed
/// straight from the outbox.
fn statuses(
    db: &Db,
    registry: &Registry,
    dispatch: &DispatchHandle,
) -> crate::store::Result<Vec<PluginStatus>> {
    let backlog: std::collections::HashMap<String, u64> = dispatch
        .stats()
        .pending_with(db.read(|c| c.backlog())?)
        .into_iter()
        .collect();
    let mut statuses = registry.plugins_status();
    for s in &mut statuses {
        s.pending_deliveries = backlog.get(&s.name).copied().unwrap_or(0);
    }
    Ok(statuses)
}

/// What `POST /v1/admin/plugins/reload` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadResult {
    /// One entry per plugin file found or plugin unloaded.
    pub changes: Vec<ReloadReport>,
    /// Every plugin afterwards, as `GET /v1/admin/plugins` lists them.
    pub plugins: Vec<PluginStatus>,
}

/// Rescans the plugins folder now: loads new and changed files, unloads plugins whose file is gone
/// (what the watcher does on its own unless the server runs with `--no-watch`). A file that fails to load
/// leaves the running version serving and is reported as `failed`.
#[utoipa::path(post, path = "/v1/admin/plugins/reload", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, description = "What changed, and every plugin afterwards", body = ReloadResult),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 500, description = "The plugins folder cannot be read", body = ErrorBody)))]
pub async fn reload_plugins(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<ReloadResult>, ApiError> {
    let (db, registry) = (state.db().clone(), state.chat.registry().clone());
    let dispatch = state.chat.dispatch().clone();
    let (changes, plugins) = tokio::task::spawn_blocking(move || {
        let changes = registry
            .rescan()
            .map_err(|e| anyhow::anyhow!("rescanning the plugins folder: {e}"))?;
        let plugins = statuses(&db, &registry, &dispatch)?;
        Ok::<_, anyhow::Error>((changes, plugins))
    })
    .await?
    .map_err(crate::chat::ChatError::Internal)?;
    state.chat.dispatch().wake();
    Ok(Json(ReloadResult { changes, plugins }))
}

/// Deliveries that used up their attempts, oldest first.
#[utoipa::path(get, path = "/v1/admin/dead-letters", tag = "admin", security(("admin_key" = [])),
    params(DeadLetterPage),
    responses((status = 200, description = "A page of dead letters", body = Vec<DeadLetterInfo>),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 422, description = "A query parameter has the wrong type or is out of range", body = ErrorBody)))]
pub async fn dead_letters(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<DeadLetterPage>,
) -> Result<Json<Vec<DeadLetterInfo>>, ApiError> {
    if let Some(limit) = page.limit {
        fields::DEAD_LETTERS_LIMIT.check(limit.into())?;
    }
    let limit = page.limit.unwrap_or(fields::MAX_DEAD_LETTERS_PAGE);
    Ok(Json(state.chat.dead_letters(page.after, limit).await?))
}

/// Queues a dead letter for delivery again; returns it as it was.
#[utoipa::path(post, path = "/v1/admin/dead-letters/{id}/replay", tag = "admin",
    security(("admin_key" = [])),
    params(("id" = i64, Path, description = "The dead letter id")),
    responses((status = 200, description = "Queued again", body = DeadLetterInfo),
              (status = 400, description = "The id is not a number", body = ErrorBody),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "No such dead letter", body = ErrorBody)))]
pub async fn replay_dead_letter(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<DeadLetterInfo>, ApiError> {
    Ok(Json(state.chat.replay_dead_letter(id).await?))
}
