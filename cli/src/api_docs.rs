//! The API reference at the edge: the merged public OpenAPI document at `/api/openapi.json`
//! and a browsable reference at `/api/docs` (Swagger UI), both served by the local router.
//!
//! The reference works offline: its script and stylesheet come from the `swagger-ui-dist`
//! package that `scripts/api-docs.sh` installs with npm into `tools/api-docs/` (pinned by its
//! lock file), never from a CDN. The page itself and its start-up script are ours, so the page
//! can forbid every other origin and every inline script (`Content-Security-Policy`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kommerce_kit::http::Problem;

/// Where the installed package's files are unless `KOMMERCE_API_DOCS_DIR` says otherwise.
const INSTALLED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tools/api-docs/node_modules/swagger-ui-dist"
);

/// The package files the page uses, with their media types: nothing else is served.
const ASSETS: &[(&str, &str)] = &[
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    ("swagger-ui.css", "text/css; charset=utf-8"),
    ("favicon-32x32.png", "image/png"),
];

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kommerce API reference</title>
<link rel="icon" type="image/png" href="/api/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
</head>
<body>
<div id="reference"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/start.js"></script>
</body>
</html>
"#;

const START: &str = r##"window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#reference",
    deepLinking: true,
    persistAuthorization: false,
  });
});
"##;

/// Scripts and styles from this origin only (Swagger UI sets inline styles); no frames.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   frame-ancestors 'none'";

#[derive(Debug)]
struct Docs {
    public: String,
    assets: PathBuf,
}

/// The assets directory: `KOMMERCE_API_DOCS_DIR`, else where `scripts/api-docs.sh` installs.
pub fn assets_dir() -> PathBuf {
    std::env::var_os("KOMMERCE_API_DOCS_DIR")
        .map_or_else(|| PathBuf::from(INSTALLED), PathBuf::from)
}

/// `/api/openapi.json`, `/api/docs`, its start-up script and its assets from `assets`.
pub fn routes<S>(assets: &Path) -> Router<S> {
    let docs = Arc::new(Docs {
        public: kommerce_kit::openapi::to_json(&crate::openapi::public_document()),
        assets: assets.to_owned(),
    });
    Router::new()
        .route("/api/openapi.json", get(document))
        .route("/api/docs", get(page))
        .route("/api/docs/", get(page))
        .route("/api/docs/start.js", get(start))
        .route("/api/docs/assets/{file}", get(asset))
        .with_state(docs)
}

async fn document(State(docs): State<Arc<Docs>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        docs.public.clone(),
    )
        .into_response()
}

async fn page() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

async fn start() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        START,
    )
        .into_response()
}

async fn asset(State(docs): State<Arc<Docs>>, UrlPath(file): UrlPath<String>) -> Response {
    let Some((name, media_type)) = ASSETS.iter().find(|(name, _)| *name == file) else {
        return Problem::for_status(StatusCode::NOT_FOUND).into_response();
    };
    match tokio::fs::read(docs.assets.join(name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, *media_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => Problem::for_status(StatusCode::NOT_FOUND)
            .detail(format!(
                "the API reference's assets are not installed in {}: run scripts/api-docs.sh",
                docs.assets.display()
            ))
            .into_response(),
    }
}
