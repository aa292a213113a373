//! One module per resource; `router()` is the whole API surface of the service.

mod reviews;

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::get;
use kommerce_kit::http::{ApiError, FieldError};

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

/// Query parameters as a map: an unreadable query string is 400, an unknown parameter 422.
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
        .map(|k| FieldError::new(k.clone(), "unknown parameter"))
        .collect();
    if unknown.is_empty() {
        Ok(map)
    } else {
        Err(ApiError::Validation(unknown))
    }
}

pub(crate) use kommerce_kit::http::path_id;
