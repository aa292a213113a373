//! One module per resource; `router()` is the whole API surface of the service.

mod categories;
mod internal;
mod items;

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::{delete, get, patch, post};
use kommerce_kit::http::ApiError;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/categories",
            get(categories::list).post(categories::create),
        )
        .route(
            "/api/v1/categories/{id}",
            patch(categories::update).delete(categories::delete),
        )
        .route("/api/v1/items", get(items::list).post(items::create))
        .route(
            "/api/v1/items/{id}",
            get(items::get).patch(items::update).delete(items::delete),
        )
        .route("/api/v1/items/{id}/stock", post(items::adjust_stock))
        .route("/api/v1/items/{id}/stock/ledger", get(items::ledger))
        .route("/internal/v1/items", get(internal::items))
        .route("/internal/v1/stock/reservations", post(internal::reserve))
        .route(
            "/internal/v1/stock/reservations/{id}",
            delete(internal::release),
        )
        .route("/internal/v1/stock/policy", get(internal::policy))
}

/// Query parameters as a map; an unreadable query string is a 400 problem.
pub(crate) fn params(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(m)| m)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

pub(crate) use kommerce_kit::http::path_id;
