//! The local router of `kommerce up`: one port, `/api/v1/*` routed to the owning service by
//! prefix exactly as the Ingress does; `/internal/*` and unknown API prefixes get 404; every
//! other path is the storefront (`crate::web`), as the Ingress sends it to the `web` component.
//!
//! Request bodies are read whole, up to the owning service's own body limit, before they are
//! forwarded. Streaming them through lost the service's 413: a service answers an oversized
//! body early and closes the connection while the body is still arriving; the close (a reset,
//! since unread data is left) can reach the router before the response is read, and hyper's
//! client then reports only the failed write (a 502), intermittently. Recovering the response
//! after the fact cannot be made reliable (the reset discards it), so the router answers the
//! same 413 problem itself, having read the body to its end so that its own client is not
//! reset either; the service only ever gets a complete body within its limit.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
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
    storefront: Router,
}

/// A router for `services`, each reachable at `upstreams[name]` (`127.0.0.1:8081`), with the
/// storefront built in [`crate::web::dist_dir`].
pub fn router(
    services: &[ServiceSpec],
    upstreams: impl IntoIterator<Item = (&'static str, String)>,
) -> Router {
    router_with_storefront(services, upstreams, &crate::web::dist_dir())
}

/// [`router`] with the storefront's files from `web_dir`.
pub fn router_with_storefront(
    services: &[ServiceSpec],
    upstreams: impl IntoIterator<Item = (&'static str, String)>,
    web_dir: &std::path::Path,
) -> Router {
    let routes = Routes {
        services: services.to_vec(),
        upstreams: upstreams.into_iter().collect(),
        client: Client::builder(TokioExecutor::new()).build_http(),
        storefront: crate::web::storefront(web_dir),
    };
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .merge(crate::api_docs::routes(&crate::api_docs::assets_dir()))
        .fallback(proxy)
        .with_state(Arc::new(routes))
}

/// Past its limit, a body is still read (and dropped) up to this many bytes, so that its sender
/// gets the 413 rather than a reset connection; a larger one is cut off.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;

enum BodyError {
    TooLarge,
    Unreadable(axum::Error),
}

/// The whole body if it is at most `limit` bytes; past it, reads on (dropping) to the end or
/// to [`DRAIN_LIMIT_BYTES`].
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT_BYTES {
            break;
        }
    }
    if seen > limit {
        Err(BodyError::TooLarge)
    } else {
        Ok(Bytes::from(kept))
    }
}

/// Paths the services answer (or refuse); everything else belongs to the storefront.
fn is_api(path: &str) -> bool {
    ["/api", "/internal"].iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

async fn proxy(State(routes): State<Arc<Routes>>, req: Request) -> Response {
    if !is_api(req.uri().path()) {
        use tower::ServiceExt;
        let site = routes.storefront.clone();
        return match site.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
    }
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
    let limit = (service.body_limit_bytes)();
    let (mut parts, body) = req.into_parts();
    let body = match read_body(body, limit).await {
        Ok(body) => body,
        // The problem the service's own layers answer with.
        Err(BodyError::TooLarge) => {
            return Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE)
                .detail(format!("the body must be at most {limit} bytes"))
                .into_response();
        }
        Err(BodyError::Unreadable(e)) => {
            return Problem::for_status(StatusCode::BAD_REQUEST)
                .detail(format!("the body could not be read: {e}"))
                .into_response();
        }
    };
    parts.uri = uri;
    parts.headers.remove(header::HOST);
    // The router is the edge: the client is whoever connected to it, never what a request
    // claims (the services believe this header from the router only).
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    match peer.and_then(|p| header::HeaderValue::from_str(&p).ok()) {
        Some(v) => {
            parts.headers.insert("x-forwarded-for", v);
        }
        None => {
            parts.headers.remove("x-forwarded-for");
        }
    }
    // The body now goes as one piece of known length.
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, body.len().into());
    let req = Request::from_parts(parts, Body::from(body));
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;
    use axum::routing::post;

    use super::*;
    use crate::topology::SERVICES;

    /// A service stand-in that, like the kit's body limit, answers an over-long body with a
    /// 413 at once, without reading it, and closes the connection; a body it accepts it
    /// reads and reports the size of.
    async fn early_413(headers: HeaderMap, body: Body) -> Response {
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if length.is_none_or(|n| n > 64 * 1024) {
            let mut r = Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
            r.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            drop(body);
            return r;
        }
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        bytes.len().to_string().into_response()
    }

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    async fn stack() -> String {
        let upstream = serve(
            Router::new()
                .route("/api/v1/auth/login", post(early_413))
                .route("/api/v1/payments", post(early_413))
                .route("/api/v1/cart/items", post(early_413))
                .route("/api/v1/images", post(early_413)),
        )
        .await;
        let upstreams = ["user", "pay", "order", "image"].map(|s| (s, upstream.clone()));
        format!("http://{}", serve(router(SERVICES, upstreams)).await)
    }

    #[tokio::test]
    async fn the_router_names_the_client_and_drops_a_forged_forwarded_for() {
        let upstream = serve(Router::new().route(
            "/api/v1/users/me",
            axum::routing::get(|h: axum::http::HeaderMap| async move {
                h.get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned()
            }),
        ))
        .await;
        // Served as `kommerce up` serves it: by the kit, which hands over the peer address.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(SERVICES, [("user", upstream)]);
        tokio::spawn(kommerce_kit::http::serve(
            listener,
            app,
            std::future::pending(),
        ));
        let seen = reqwest::Client::new()
            .get(format!("http://{addr}/api/v1/users/me"))
            .header("x-forwarded-for", "1.2.3.4")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(seen, "127.0.0.1");
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_413_problem_every_time() {
        let base = stack().await;
        let client = reqwest::Client::new();
        let megabyte = format!(r#"{{"email":"{}"}}"#, "x".repeat(1024 * 1024));
        for i in 0..50 {
            for path in [
                "/api/v1/auth/login",
                "/api/v1/payments",
                "/api/v1/cart/items",
            ] {
                let r = client
                    .post(format!("{base}{path}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(megabyte.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path} #{i}");
                assert_eq!(
                    r.headers()[header::CONTENT_TYPE],
                    "application/problem+json"
                );
                let p: serde_json::Value = r.json().await.unwrap();
                assert_eq!(p["status"], 413, "{path} #{i}");
            }
        }
        let upload = client
            .post(format!("{base}/api/v1/images"))
            .body(vec![0u8; 12 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            upload.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_forwarded_whole() {
        let base = stack().await;
        let client = reqwest::Client::new();
        let r = client
            .post(format!("{base}/api/v1/auth/login"))
            .header(header::CONTENT_TYPE, "application/json")
            .body("y".repeat(64 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), (64 * 1024).to_string());
        // The stand-in has the kit's limit; the router forwards what the image service takes.
        let r = client
            .post(format!("{base}/api/v1/images"))
            .body(vec![0u8; 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "1024");
    }

    #[tokio::test]
    async fn pages_are_the_storefront_and_unknown_api_paths_are_problems() {
        let dir = std::env::temp_dir().join(format!("kommerce-router-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html>shop").unwrap();
        let base = format!(
            "http://{}",
            serve(router_with_storefront(SERVICES, [], &dir)).await
        );
        for page in ["/", "/search?q=tea", "/items/1", "/apiary", "/internals"] {
            let r = reqwest::get(format!("{base}{page}")).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{page}");
            assert_eq!(r.text().await.unwrap(), "<!doctype html>shop", "{page}");
        }
        for api in [
            "/api",
            "/api/v2/items",
            "/internal/v1/images/1/attach",
            "/api/v1/usersx",
        ] {
            let r = reqwest::get(format!("{base}{api}")).await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{api}");
            assert_eq!(
                r.headers()[header::CONTENT_TYPE],
                "application/problem+json",
                "{api}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_router_serves_the_public_document_and_an_offline_reference() {
        let base = format!("http://{}", serve(router(SERVICES, [])).await);
        let http = reqwest::Client::new();

        let doc = http
            .get(format!("{base}/api/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(doc.status(), StatusCode::OK);
        let doc: serde_json::Value = doc.json().await.unwrap();
        let expected = serde_json::to_value(crate::openapi::public_document()).unwrap();
        assert_eq!(doc, expected);

        let page = http.get(format!("{base}/api/docs")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        let html = page.text().await.unwrap();
        // Every script and stylesheet the page loads is served here, by this router, from the
        // package scripts/api-docs.sh installed: the reference works with no network.
        let urls: Vec<&str> = html
            .split(['"'])
            .filter(|s| s.starts_with("/api/docs/") || s.starts_with("http"))
            .collect();
        assert!(urls.len() >= 3, "{html}");
        for url in urls {
            assert!(url.starts_with('/'), "{url} is not on this origin");
            let r = http.get(format!("{base}{url}")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{url}");
            assert!(!r.bytes().await.unwrap().is_empty(), "{url}");
        }
        let bundle = http
            .get(format!("{base}/api/docs/assets/swagger-ui-bundle.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            bundle.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(bundle.text().await.unwrap().contains("SwaggerUIBundle"));

        // Nothing else of the package, and nothing outside it, is served.
        for other in ["package.json", "..%2F..%2Fpackage.json", "index.html"] {
            let r = http
                .get(format!("{base}/api/docs/assets/{other}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{other}");
        }
    }
}
