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
