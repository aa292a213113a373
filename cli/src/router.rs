//! The local router of `kommerce up`: one port, `/api/v1/*` routed to the owning service by
//! prefix exactly as the Ingress does; `/internal/*` and unknown prefixes get 404.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kommerce_kit::http::Problem;

use crate::topology::{ServiceSpec, route};

#[derive(Debug)]
struct Routes {
    services: Vec<ServiceSpec>,
    /// Service name → `host:port`.
    upstreams: HashMap<&'static str, String>,
    client: Client<HttpConnector, Body>,
}

/// A router for `services`, each reachable at `upstreams[name]` (`127.0.0.1:8081`).
pub fn router(
    services: &[ServiceSpec],
    upstreams: impl IntoIterator<Item = (&'static str, String)>,
) -> Router {
    let routes = Routes {
        services: services.to_vec(),
        upstreams: upstreams.into_iter().collect(),
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .fallback(proxy)
        .with_state(Arc::new(routes))
}

async fn proxy(State(routes): State<Arc<Routes>>, mut req: Request) -> Response {
    let Some(service) = route(&routes.services, req.uri().path()) else {
        return Problem::for_status(StatusCode::NOT_FOUND)
            .detail("no service owns this path")
            .into_response();
    };
    let Some(upstream) = routes.upstreams.get(service.name) else {
        return Problem::for_status(StatusCode::BAD_GATEWAY)
            .detail(format!("{} is not running", service.name))
            .into_response();
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{upstream}{path}").parse::<Uri>() else {
        return Problem::for_status(StatusCode::BAD_REQUEST).into_response();
    };
    *req.uri_mut() = uri;
    req.headers_mut().remove(header::HOST);
    match routes.client.request(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => {
            tracing::warn!(service = service.name, error = %e, "upstream failed");
            Problem::for_status(StatusCode::BAD_GATEWAY)
                .detail(format!("{} did not answer", service.name))
                .into_response()
        }
    }
}
