//! One module per resource; `router()` is the whole API surface of the service.

mod images;
mod internal;

use axum::Router;
use axum::routing::{delete, get, post};

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

/// Query parameters as a map, by the kit's one parser: 400 unreadable, 422 naming an unknown
/// parameter or one holding NUL.
pub(crate) use kommerce_kit::http::known_query_params as params;
pub(crate) use kommerce_kit::http::path_id;
