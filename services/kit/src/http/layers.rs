//! The layer stack every service gets, in one place.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::{Problem, Readiness, health_routes, metrics};
use crate::HttpSettings;

/// Longest request target (path and query) a service reads; longer is a 414 problem. The
/// longest legitimate one is the catalogue read of 100 ids (about 4 KiB).
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// Most header bytes (names and values) a request may carry; more is a 431 problem.
pub const MAX_HEADERS_BYTES: usize = 64 * 1024;

/// Wraps a service's API router with what every service has: `/healthz`, `/readyz`,
/// `/metrics`, problem+json for unknown routes and methods, request ids (`x-request-id`,
/// generated when absent and echoed back), a trace span per request with the matched route,
/// request metrics, limits on the request head (414/431 problem+json), a request timeout and a
/// body limit.
pub fn service_router(api: Router, readiness: Readiness, settings: &HttpSettings) -> Router {
    metrics::install();
    let timeout = Duration::from_millis(settings.request_timeout_ms);
    Router::new()
        .merge(api)
        .merge(health_routes(readiness))
        .route("/metrics", get(metrics::render))
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            Problem::for_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        // Router::layer wraps what came before: the last layer added is the outermost.
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(settings.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(middleware::from_fn(head_limits))
        .layer(middleware::from_fn({
            let trusted = std::sync::Arc::new(settings.trusted_proxies.clone());
            move |req, next| super::client::resolve(trusted.clone(), req, next)
        }))
        .layer(middleware::from_fn(observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(span_for)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

fn route_of(req: &Request) -> &str {
    req.extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

fn span_for(req: &Request) -> tracing::Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        method = %req.method(),
        route = route_of(req),
        request_id,
    )
}

/// Records request metrics, and turns the bare error responses of inner layers (408/503
/// timeout, 413 body limit) into problem+json, so that clients see one error format.
async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = route_of(&req).to_owned();
    let response = next.run(req).await;
    let status = response.status();
    metrics::record_request(&method, &route, status.as_u16(), started.elapsed());
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        return Problem::for_status(status).into_response();
    }
    response
}

/// 414 for a request target over [`MAX_URI_BYTES`], 431 for headers over
/// [`MAX_HEADERS_BYTES`], both problem+json. hyper answers a head larger than its read buffer
/// itself, with a bare 431 before any layer runs; `super::serve` raises that buffer well above
/// these limits so that the answer is this one.
async fn head_limits(req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Problem::for_status(StatusCode::URI_TOO_LONG)
            .detail(format!(
                "the path and query string must be at most {MAX_URI_BYTES} bytes"
            ))
            .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADERS_BYTES {
        return Problem::for_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .detail(format!(
                "the headers must be at most {MAX_HEADERS_BYTES} bytes"
            ))
            .into_response();
    }
    next.run(req).await
}
