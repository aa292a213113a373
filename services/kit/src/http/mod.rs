//! HTTP conventions shared by every service: problem+json errors, the JSON body extractor,
//! health and metrics endpoints, and the layer stack (request id, trace, metrics, timeout,
//! body limit).

mod error;
mod health;
mod json;
mod layers;
pub mod metrics;

pub use error::{ApiError, FieldError, PROBLEM_JSON, Problem};
pub use health::{Readiness, health_routes};
pub use json::ApiJson;
pub use layers::service_router;

/// A path segment that must be an id: anything that is not a UUID names nothing, so it is a
/// 404 like any unknown id (never a 400 that would tell ids apart from other strings).
pub fn path_id(raw: &str, what: &'static str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}

/// A query string as name → value; one that cannot be read is a 400.
pub type QueryParams = std::collections::HashMap<String, String>;

pub fn query_params(
    q: Result<axum::extract::Query<QueryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<QueryParams, ApiError> {
    q.map(|axum::extract::Query(m)| m)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// `limit` from a query: `default` when absent, else 1..=`max` (422 naming `limit`).
pub fn limit_param(p: &QueryParams, default: i64, max: i64) -> Result<i64, ApiError> {
    match p.get("limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::field("limit", format!("must be from 1 to {max}"))),
    }
}

/// `cursor` from a query, for listings paged by (time-ordered) id: absent, or an id this
/// listing handed out (422 naming `cursor` otherwise).
pub fn id_cursor_param(p: &QueryParams) -> Result<Option<uuid::Uuid>, ApiError> {
    p.get("cursor")
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::field("cursor", "is not a cursor from this listing"))
        })
        .transpose()
}

/// The cursor of the page after `page`: its last id when the page is full, else `None`.
pub fn next_id_cursor<T>(
    page: &[T],
    limit: i64,
    id: impl Fn(&T) -> uuid::Uuid,
) -> Option<uuid::Uuid> {
    (i64::try_from(page.len()).ok() == Some(limit))
        .then(|| page.last().map(id))
        .flatten()
}
