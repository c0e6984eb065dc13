//! `GET /v1/admin/cluster` (admin key): the cluster this node belongs to, its nodes, the sequencer holder
//! and each catalog plugin's rollout ([`ClusterView`]). A server on its own answers 404 `not_a_cluster`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use crate::cluster::view::ClusterView;
use crate::server::AppState;
use crate::store::StoreError;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(cluster))
}

/// The cluster: this node's id, every node with its heartbeat age, whether it is alive (a heartbeat
/// within 5 s), whether it is the sequencer and the plugins it runs; the sequencer holder; and per catalog
/// plugin its SHA-256 and how many live nodes run it (`3/3 nodes on abc123def456`).
#[utoipa::path(get, path = "/v1/admin/cluster", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, description = "The cluster as this node sees it", body = ClusterView),
              (status = 401, description = "Missing or wrong admin key", body = ErrorBody),
              (status = 404, description = "This server is not a node of a cluster (`not_a_cluster`)", body = ErrorBody),
              (status = 503, description = "The database cannot be reached (`unavailable`)", body = ErrorBody)))]
pub async fn cluster(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<ClusterView>, ApiError> {
    let not_a_cluster = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_a_cluster",
            "not a cluster node: this server runs on its own (start it with --nats to join a cluster)",
        )
    };
    let node = state.cluster.clone().ok_or_else(not_a_cluster)?;
    let pg = state.db().as_postgres().ok_or_else(not_a_cluster)?;
    let rows = pg
        .cluster_nodes(&node.cluster)
        .await
        .map_err(StoreError::from)?;
    let catalog = pg
        .plugin_catalog(&node.cluster)
        .await
        .map_err(StoreError::from)?;
    Ok(Json(ClusterView::build(
        &node.cluster,
        &node.node_id,
        rows,
        catalog,
    )))
}
