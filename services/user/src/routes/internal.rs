//! Service-to-service endpoints under `/internal/v1`, never routed by the Ingress.

use axum::Json;
use axum::extract::{Path, State};
use kommerce_kit::http::{ApiError, path_id};

use crate::AppState;
use crate::store::{self, Address};

/// `GET /internal/v1/users/{id}/addresses/{address_id}`: the address if it belongs to the user
/// (pay checks a checkout's shipping address with it), else 404.
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
