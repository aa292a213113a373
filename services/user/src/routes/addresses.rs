use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson, path_id};
use uuid::Uuid;

use crate::AppState;
use crate::domain::address_bodies::{AddressBody, AddressPatchBody};
use crate::domain::{AddressPatch, NewAddress};
use crate::store::{self, Address};

fn address_id(raw: &str) -> Result<Uuid, ApiError> {
    path_id(raw, "address")
}

/// `GET /api/v1/users/me/addresses`: the default first, then the most recently used.
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn list(
    State(s): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Vec<Address>>, ApiError> {
    Ok(Json(store::addresses(&s.db, caller.id).await?))
}

#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn get(
    State(s): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Address>, ApiError> {
    store::address(&s.db, caller.id, address_id(&id)?)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("address"))
}

#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn create(
    State(s): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<AddressBody>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewAddress::try_from(body)?;
    let a = store::create_address(&s.db, caller.id, &new).await?;
    let location = format!("/api/v1/users/me/addresses/{}", a.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(a)))
}

#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn update(
    State(s): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddressPatchBody>,
) -> Result<Json<Address>, ApiError> {
    let id = address_id(&id)?;
    let patch = AddressPatch::try_from(body)?;
    Ok(Json(
        store::update_address(&s.db, caller.id, id, patch).await?,
    ))
}

#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn delete(
    State(s): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    store::delete_address(&s.db, caller.id, address_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users/me/addresses/{id}/default`
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn make_default(
    State(s): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Address>, ApiError> {
    Ok(Json(
        store::set_default(&s.db, caller.id, address_id(&id)?).await?,
    ))
}
