//! Service-to-service endpoints under `/internal/v1`, never routed by the Ingress.

use axum::Json;
use axum::extract::{Path, State};
use kommerce_kit::http::{ApiError, path_id};

use crate::AppState;
use crate::store::{self, Address};

/// A user's address, for another service.
///
/// The address if it belongs to the user, else 404: pay checks a checkout's shipping address
/// with it and carries a copy to the order. Not routed by the Ingress.
#[utoipa::path(
    get,
    path = "/internal/v1/users/{id}/addresses/{address_id}",
    operation_id = "internal_get_address",
    security(("service" = ["pay"])),
    params(
        ("id" = Uuid, Path, description = "The user."),
        ("address_id" = Uuid, Path, description = "One of the user's addresses."),
    ),
    responses((status = 200, description = "The address.", body = Address)),
)]
#[tracing::instrument(skip(s))]
pub async fn address(
    State(s): State<AppState>,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<Address>, ApiError> {
    let (user, id) = (path_id(&user, "address")?, path_id(&id, "address")?);
    store::address(&s.db, user, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("address"))
}
