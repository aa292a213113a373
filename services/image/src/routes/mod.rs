//! One module per resource; `router()` is the whole API surface of the service.

mod images;
mod internal;

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::{delete, get, post};
use kommerce_kit::http::ApiError;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/images", post(images::upload))
        .route(
            "/api/v1/images/{id}",
            get(images::get).put(images::replace).delete(images::delete),
        )
        .route("/internal/v1/images", delete(internal::delete_attached))
        .route("/internal/v1/images/{id}", delete(internal::delete))
        .route("/internal/v1/images/{id}/attach", post(internal::attach))
        .route("/internal/v1/images/{id}/detach", post(internal::detach))
}

/// Query parameters as a map; an unreadable query string is a 400 problem, an unknown
/// parameter a 422 naming it.
pub(crate) fn params(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    known: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let map = q
        .map(|Query(m)| m)
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let unknown: Vec<_> = map
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| kommerce_kit::http::FieldError::new(k.clone(), "unknown parameter"))
        .collect();
    if unknown.is_empty() {
        Ok(map)
    } else {
        Err(ApiError::Validation(unknown))
    }
}

pub(crate) use kommerce_kit::http::path_id;
