//! One module per resource; `router()` is the whole API surface of the service.

mod reviews;

use axum::Router;
use axum::routing::get;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reviews", get(reviews::list).post(reviews::create))
        .route("/api/v1/reviews/mine", get(reviews::mine))
        .route("/api/v1/reviews/summary", get(reviews::summary))
        .route(
            "/api/v1/reviews/{id}",
            get(reviews::one)
                .patch(reviews::update)
                .delete(reviews::delete),
        )
}

/// Query parameters as a map, by the kit's one parser: 400 unreadable, 422 naming an unknown
/// parameter or one holding NUL.
pub(crate) use kommerce_kit::http::known_query_params as params;
pub(crate) use kommerce_kit::http::path_id;
