//! `/internal/v1/images`: what the item and review services call. Never routed by the Ingress.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kommerce_contracts::image::{AttachRequest, DetachRequest, OwnerKind};
use kommerce_kit::http::{ApiError, ApiJson};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{params, path_id};
use crate::AppState;
use crate::store;

/// What an image can belong to, from a query parameter.
fn kind(raw: &str, field: &str) -> Result<OwnerKind, ApiError> {
    match raw {
        "item" => Ok(OwnerKind::Item),
        "review" => Ok(OwnerKind::Review),
        _ => Err(ApiError::field(field, "must be item or review")),
    }
}

/// Attaches an image to an item or review. 404 unknown image, 403 someone else's, 409 attached
/// to something else; attaching again to the same owner is a no-op (200).
#[tracing::instrument(skip(state, body))]
pub async fn attach(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AttachRequest>,
) -> Result<Json<Value>, ApiError> {
    let id = path_id(&id, "image")?;
    let kind = body.kind.as_str();
    let mut tx = state.db.begin().await?;
    let row = store::lock(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    if row.owner_id != body.user_id {
        return Err(ApiError::Forbidden(
            "the image was uploaded by someone else".into(),
        ));
    }
    match (row.attached_kind.as_deref(), row.attached_id) {
        (Some(k), Some(o)) if k == kind && o == body.owner_id => return Ok(Json(row.json())),
        (Some(_), Some(_)) => {
            return Err(ApiError::conflict(
                "image-attached",
                "the image already belongs to something else",
            ));
        }
        _ => {}
    }
    let row = store::attach(&mut tx, id, kind, body.owner_id).await?;
    tx.commit().await?;
    Ok(Json(row.json()))
}

/// Undoes an attachment to `kind`/`owner_id` (a compensation); the image becomes unattached
/// and the sweeper's clock restarts. Idempotent: 204 whatever the state.
#[tracing::instrument(skip(state, body))]
pub async fn detach(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DetachRequest>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "image")?;
    store::detach(&state.db, id, body.kind.as_str(), body.owner_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one image. Idempotent: 204 also when it is already gone.
#[tracing::instrument(skip(state))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let Ok(id) = path_id(&id, "image") else {
        return Ok(StatusCode::NO_CONTENT);
    };
    for (id, version) in store::delete_ids(&state.db, &[id]).await? {
        state.blobs.forget_version(id, version).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `?kind=review&owner_id=...`: deletes every image of a deleted item or review. Idempotent.
#[tracing::instrument(skip(state, query))]
pub async fn delete_attached(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = params(query, &["kind", "owner_id"])?;
    let kind = kind(q.get("kind").map_or("", String::as_str), "kind")?.as_str();
    let owner: Uuid = q
        .get("owner_id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::field("owner_id", "must be a UUID"))?;
    let deleted = store::delete_attached_to(&state.db, kind, owner).await?;
    for (id, version) in &deleted {
        state.blobs.forget_version(*id, *version).await;
    }
    Ok(Json(json!({"deleted": deleted.len()})))
}
