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
