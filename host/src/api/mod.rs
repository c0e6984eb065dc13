//! The REST and WebSocket API: thin axum routers per resource that parse, call the chat layer and render.
//!
//! ## Layout
//! - [`auth`]: bearer extractors ([`auth::Admin`], [`auth::CurrentUser`]).
//! - [`error`]: [`ApiError`] and the `{"error": {"code", "message"}}` shape.
//! - [`extract`]: JSON body, path and query extractors that fail with [`ApiError`]s.
//! - [`admin_users`]: users and their tokens (admin key); [`admin`]: plugins, dead letters (admin key);
//!   [`admin_plugins`]: uploading plugins, enabling, disabling and their settings (admin key);
//!   [`admin_cluster`]: the cluster's nodes and plugin rollout (admin key, cluster nodes only);
//!   [`admin_tail`]: a live tail of events and plugin logs, and the last minutes' samples (admin key).
//! - [`me`]: the calling user; [`devices`]: the caller's push device tokens; [`blocks`]: the users the
//!   caller blocked; [`presence`]: who is online.
//! - [`conversations`]: conversations and participants; [`roles`]: participants' roles and ownership;
//!   [`bans`]: users kept out of a conversation.
//! - [`messages`]: sending, paging, editing, deleting messages; typing; [`threads`]: replies and
//!   threads; [`held`]: the moderation queue.
//! - [`receipts`]: delivered and read receipts.
//! - [`reactions`]: emoji reactions.
//! - [`ws`]: the WebSocket of live events.
//! - [`openapi`]: the OpenAPI document, collected from the handlers' annotations; [`contract`]: the rule
//!   of every input field added to it, from the rules the server checks input with.
//!
//! Every route is registered through `utoipa_axum::routes!`, which takes the method and path from the
//! handler's `#[utoipa::path]` annotation: the router and the OpenAPI document are built from the same
//! annotations, so they cannot disagree.

pub mod admin;
pub mod admin_cluster;
pub mod admin_plugins;
pub mod admin_tail;
pub mod admin_users;
pub mod auth;
pub mod bans;
pub mod blocks;
pub mod contract;
pub mod conversations;
pub mod devices;
pub mod error;
pub mod extract;
pub mod held;
pub mod me;
pub mod messages;
pub mod openapi;
pub mod presence;
pub mod reactions;
pub mod receipts;
pub mod roles;
pub mod threads;
pub mod ws;

pub use error::ApiError;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::AppState;

/// The routes and the OpenAPI document describing them, before the state is attached.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(openapi::openapi_json))
        .merge(admin_users::routes())
        .merge(admin::routes())
        .merge(admin_plugins::routes())
        .merge(admin_cluster::routes())
        .merge(admin_tail::routes())
        .merge(me::routes())
        .merge(presence::routes())
        .merge(devices::routes())
        .merge(blocks::routes())
        .merge(conversations::routes())
        .merge(roles::routes())
        .merge(bans::routes())
        .merge(messages::routes())
        .merge(threads::routes())
        .merge(held::routes())
        .merge(receipts::routes())
        .merge(reactions::routes())
        .merge(ws::routes())
        .merge(crate::metrics::routes())
}

/// The OpenAPI document of every route, with the rule of every input field ([`contract`]).
pub fn openapi_document() -> serde_json::Value {
    finish_document(&routes().split_for_parts().1)
}

/// The document as utoipa derives it from the annotations, before [`contract`] adds the rules.
pub fn raw_openapi_document() -> serde_json::Value {
    serde_json::to_value(routes().split_for_parts().1).unwrap_or_default()
}

/// `doc` as JSON with the rules added; a rule that finds no place is a bug, logged.
fn finish_document(doc: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut json = serde_json::to_value(doc).unwrap_or_else(|err| {
        tracing::error!("cannot write the OpenAPI document: {err}");
        serde_json::Value::Null
    });
    for missing in contract::apply(&mut json) {
        tracing::error!("OpenAPI document: the rule for {missing} found no schema to apply to");
    }
    json
}

/// The API router over `state`: every route, the body limit, JSON 404/405 answers, and the request
/// counter of `/metrics` (by route template, so it sees the matched route).
pub fn router(state: AppState) -> Router {
    let body_limit = state.body_limit;
    let metrics = state.metrics.clone();
    Router::from(routes())
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track_http,
        ))
        .with_state(state)
}

/// The health check's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
}

/// Liveness and readiness: answers 200 when the database answers a query.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "The server and its database work", body = Health),
              (status = 503, description = "The database cannot be reached (`unavailable`)", body = error::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let db = state.db().clone();
    tokio::task::spawn_blocking(move || db.read(|c| c.ping())).await??;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}
