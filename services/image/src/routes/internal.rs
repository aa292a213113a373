//! `/internal/v1/images`: what the item and review services call. Never routed by the Ingress.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kommerce_contracts::image::{AttachRequest, DetachRequest, OwnerKind};
use kommerce_kit::http::{ApiError, ApiJson, Problem};
use kommerce_kit::openapi::{IntoParams, ToSchema};
use serde::Serialize;
use uuid::Uuid;

use super::{params, path_id};
use crate::AppState;
use crate::store::{self, Image};

/// What an image can belong to, from a query parameter.
fn kind(raw: &str, field: &str) -> Result<OwnerKind, ApiError> {
    match raw {
        "item" => Ok(OwnerKind::Item),
        "review" => Ok(OwnerKind::Review),
        _ => Err(ApiError::field(field, "must be item or review")),
    }
}

/// How many images went with their owner.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ImagesDeleted)]
pub struct Deleted {
    #[schema(minimum = 0)]
    pub deleted: usize,
}

/// The query of `DELETE /internal/v1/images`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it with the kit's parser
pub struct OwnerQuery {
    /// What the owner is.
    #[param(inline)]
    pub kind: OwnerKind,
    /// The deleted item or review.
    pub owner_id: Uuid,
}

/// Attaches an image to an item or a review.
///
/// For the item and review services, when an item or a review starts showing the image: it
/// must be `user_id`'s upload and belong to nothing else. Attaching it again to the same
/// owner changes nothing (200).
#[utoipa::path(
    post,
    path = "/internal/v1/images/{id}/attach",
    operation_id = "internal_attach_image",
    security(("service" = ["item", "review"])),
    params(("id" = Uuid, Path, description = "The image.")),
    request_body = AttachRequest,
    responses(
        (status = 200, description = "Attached (or already attached to this owner).", body = Image),
        (status = 403, description = "`user_id` is not the uploader.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The image belongs to something else (`image-attached`).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip(state, body))]
pub async fn attach(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AttachRequest>,
) -> Result<Json<Image>, ApiError> {
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
        (Some(k), Some(o)) if k == kind && o == body.owner_id => return Ok(Json(row.view())),
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
    Ok(Json(row.view()))
}

/// Detaches an image from an item or a review.
///
/// A compensation of the item and review services: an attachment to `kind`/`owner_id` is
/// undone, the image becomes unattached and the sweeper's clock restarts. Idempotent: 204
/// whatever the image's state, also when it is attached to something else or unknown.
#[utoipa::path(
    post,
    path = "/internal/v1/images/{id}/detach",
    operation_id = "internal_detach_image",
    security(("service" = ["item", "review"])),
    params(("id" = Uuid, Path, description = "The image.")),
    request_body = DetachRequest,
    responses((status = 204, description = "Not attached to that owner (any more).")),
)]
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

/// Deletes one image.
///
/// For the item and review services, when their owner no longer shows it. Idempotent: 204
/// also when it is already gone. Something that is not an id names nothing: 404, as on every
/// route.
#[utoipa::path(
    delete,
    path = "/internal/v1/images/{id}",
    operation_id = "internal_delete_image",
    security(("service" = ["item", "review"])),
    params(("id" = Uuid, Path, description = "The image.")),
    responses((status = 204, description = "Gone.")),
)]
#[tracing::instrument(skip(state))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "image")?;
    for (id, version) in store::delete_ids(&state.db, &[id]).await? {
        state.blobs.forget_version(id, version).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes every image of an item or a review.
///
/// For the item and review services, when the owner is deleted. Idempotent.
#[utoipa::path(
    delete,
    path = "/internal/v1/images",
    operation_id = "internal_delete_owner_images",
    security(("service" = ["item", "review"])),
    params(OwnerQuery),
    responses((status = 200, description = "How many were deleted now.", body = Deleted)),
)]
#[tracing::instrument(skip(state, query))]
pub async fn delete_attached(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Deleted>, ApiError> {
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
    Ok(Json(Deleted {
        deleted: deleted.len(),
    }))
}
