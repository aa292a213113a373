use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kommerce_kit::auth::AdminUser;
use kommerce_kit::http::{ApiError, ApiJson, Problem};

use super::path_id;
use crate::AppState;
use crate::domain::catalogue::{CategoryBody, CategoryPatch, CategoryPatchBody, NewCategory};
use crate::store::{self, Category, CategoryNode};

/// The category tree.
///
/// Every category, as a forest of roots with their sub-categories, siblings sorted by name
/// (case-insensitively). Anyone may read it.
#[utoipa::path(
    get,
    path = "/api/v1/categories",
    operation_id = "list_categories",
    responses((status = 200, description = "The roots, each with its sub-categories.", body = [CategoryNode])),
)]
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<CategoryNode>>, ApiError> {
    Ok(Json(store::tree(&store::categories(&s.db).await?)))
}

/// Creates a category.
///
/// A root, or a sub-category of `parent_id`. Sibling names are unique, case-insensitively.
/// Admins only.
#[utoipa::path(
    post,
    path = "/api/v1/categories",
    operation_id = "create_category",
    security(("bearer" = [])),
    request_body = CategoryBody,
    responses(
        (status = 201, description = "Created.", body = Category),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A sibling already has this name (`category-exists`).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn create(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<CategoryBody>,
) -> Result<(StatusCode, Json<Category>), ApiError> {
    let c = NewCategory::try_from(body)?;
    Ok((
        StatusCode::CREATED,
        Json(store::create_category(&s.db, &c).await?),
    ))
}

/// Renames and/or moves a category.
///
/// `parent_id: null` moves it to the root; a move into itself or one of its descendants is a
/// 422 naming `parent_id`. Admins only.
#[utoipa::path(
    patch,
    path = "/api/v1/categories/{id}",
    operation_id = "update_category",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The category.")),
    request_body = CategoryPatchBody,
    responses(
        (status = 200, description = "The category as changed.", body = Category),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A sibling at the destination already has this name (`category-exists`).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn update(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CategoryPatchBody>,
) -> Result<Json<Category>, ApiError> {
    let id = path_id(&id, "category")?;
    let p = CategoryPatch::try_from(body)?;
    Ok(Json(store::update_category(&s.db, id, &p).await?))
}

/// Deletes an empty category.
///
/// Only a category without sub-categories and without items (deleted items included: they
/// keep their category) can go. Admins only.
#[utoipa::path(
    delete,
    path = "/api/v1/categories/{id}",
    operation_id = "delete_category",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The category.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The category has sub-categories or items (`category-not-empty`).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn delete(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    store::delete_category(&s.db, path_id(&id, "category")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
