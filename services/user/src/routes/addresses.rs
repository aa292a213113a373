use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson, Problem, path_id};
use uuid::Uuid;

use crate::AppState;
use crate::domain::address_bodies::{AddressBody, AddressPatchBody};
use crate::domain::{AddressPatch, NewAddress};
use crate::store::{self, Address};

fn address_id(raw: &str) -> Result<Uuid, ApiError> {
    path_id(raw, "address")
}

/// The caller's addresses.
///
/// The default first, then the most recently used (at most 20; empty when the caller has
/// none).
#[utoipa::path(
    get,
    path = "/api/v1/users/me/addresses",
    operation_id = "list_addresses",
    security(("bearer" = [])),
    responses((status = 200, description = "The addresses.", body = [Address])),
)]
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn list(
    State(s): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Vec<Address>>, ApiError> {
    Ok(Json(store::addresses(&s.db, caller.id).await?))
}

/// One of the caller's addresses.
///
/// Someone else's is a 404.
#[utoipa::path(
    get,
    path = "/api/v1/users/me/addresses/{id}",
    operation_id = "get_address",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "One of the caller's addresses.")),
    responses((status = 200, description = "The address.", body = Address)),
)]
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

/// Adds an address for the caller.
///
/// A user keeps at most 20 addresses. The first one becomes the default, a later one when
/// `default` is true (the previous default stops being one).
#[utoipa::path(
    post,
    path = "/api/v1/users/me/addresses",
    operation_id = "create_address",
    security(("bearer" = [])),
    request_body = AddressBody,
    responses(
        (status = 201, description = "The address.", body = Address,
            headers(("Location" = String, description = "The address: `/api/v1/users/me/addresses/{id}`."))),
        (status = 404, description = "The caller's account no longer exists (`user not found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller already keeps 20 addresses (`address-limit`); nothing was stored.", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Changes one of the caller's addresses.
///
/// Only the fields given change; the address becomes the most recently used. Whether it is
/// the default does not change (`POST .../default` makes it so).
#[utoipa::path(
    patch,
    path = "/api/v1/users/me/addresses/{id}",
    operation_id = "update_address",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "One of the caller's addresses.")),
    request_body = AddressPatchBody,
    responses((status = 200, description = "The changed address.", body = Address)),
)]
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

/// Deletes one of the caller's addresses.
///
/// When it was the default, the most recently used remaining address becomes the default.
#[utoipa::path(
    delete,
    path = "/api/v1/users/me/addresses/{id}",
    operation_id = "delete_address",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "One of the caller's addresses.")),
    responses((status = 204, description = "Deleted.")),
)]
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn delete(
    State(s): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    store::delete_address(&s.db, caller.id, address_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes one of the caller's addresses the default.
///
/// The previous default stops being one; the address becomes the most recently used.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/addresses/{id}/default",
    operation_id = "set_default_address",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "One of the caller's addresses.")),
    responses((status = 200, description = "The address, now the default.", body = Address)),
)]
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
