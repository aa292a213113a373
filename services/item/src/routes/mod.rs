//! One module per resource; `router()` is the whole API surface of the service.

mod categories;
mod internal;
mod items;

use axum::Router;
use axum::routing::{delete, get, patch, post};

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

pub(crate) use kommerce_kit::http::path_id;
/// Query parameters as a map, by the kit's one parser (400 unreadable, 422 naming a NUL).
pub(crate) use kommerce_kit::http::query_params as params;
