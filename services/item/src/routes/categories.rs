use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kommerce_kit::auth::AdminUser;
use kommerce_kit::http::{ApiError, ApiJson};

use super::path_id;
use crate::AppState;
use crate::domain::catalogue::{CategoryBody, CategoryPatch, CategoryPatchBody, NewCategory};
use crate::store::{self, Category, CategoryNode};

/// `GET /api/v1/categories`: the whole tree.
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<CategoryNode>>, ApiError> {
    Ok(Json(store::tree(&store::categories(&s.db).await?)))
}

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

/// Rename and/or move (`parent_id: null` moves to the root).
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

#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn delete(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    store::delete_category(&s.db, path_id(&id, "category")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
