//! The storefront's files: the built single-page app (`web/dist`) served at `/`, by the local
//! router of `kommerce up` and, in a cluster, by `kommerce web` as the `web` component.
//!
//! A path that names a file of the build is that file; any other page path is `index.html`, so
//! the app's history-mode routes (`/items/…`, `/orders/…`) survive a reload or a shared link.
//! A missing file under `/assets/` is a 404, never the page: a stale script reference must
//! fail loudly. Hashed assets are cached for a year; `index.html` is revalidated every time,
//! so a new build is picked up at once. Every answer forbids other origins' scripts, frames and
//! connections (`Content-Security-Policy`).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where `scripts/web.sh` builds the storefront, unless `KOMMERCE_WEB_DIR` says otherwise.
const BUILT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/dist");

/// Scripts, styles, images and API calls from this origin only; no plug-ins, no frames.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
                   object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The built storefront's directory: `KOMMERCE_WEB_DIR`, else `web/dist` of this checkout.
pub fn dist_dir() -> PathBuf {
    std::env::var_os("KOMMERCE_WEB_DIR").map_or_else(|| PathBuf::from(BUILT), PathBuf::from)
}

#[derive(Debug)]
struct Site {
    dir: PathBuf,
}

/// A fallback service answering every GET/HEAD with the storefront's files from `dir`.
pub fn storefront(dir: &Path) -> Router {
    Router::new().fallback(file).with_state(Arc::new(Site {
        dir: dir.to_owned(),
    }))
}

/// The file a request path names inside the build, or `None` for a path that could leave it.
fn relative(path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| rel.to_owned())
}

/// A media type by file extension (what a Vite build writes).
pub fn media_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// How a file of the build may be cached: hashed assets forever, anything else revalidated.
fn cache_control(rel: &Path) -> &'static str {
    if rel.starts_with("assets") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

async fn file(State(site): State<Arc<Site>>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served here",
        );
    }
    let Some(rel) = relative(req.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, "no such file");
    };
    let wanted = site.dir.join(&rel);
    let file = if rel.as_os_str().is_empty() {
        None
    } else {
        match tokio::fs::metadata(&wanted).await {
            Ok(m) if m.is_file() => Some((wanted, rel.clone())),
            _ => None,
        }
    };
    let (path, rel) = match file {
        Some(found) => found,
        // A missing asset is an error; any other path is a page of the app.
        None if rel.starts_with("assets") => return plain(StatusCode::NOT_FOUND, "no such file"),
        None => (site.dir.join("index.html"), PathBuf::from("index.html")),
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, media_type(&rel)),
                    (header::CACHE_CONTROL, cache_control(&rel)),
                ],
                bytes,
            )
                .into_response();
            secure(&mut response);
            response
        }
        Err(_) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the storefront is not built in {}: run `make web` (scripts/web.sh)",
                site.dir.display()
            ),
        ),
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response();
    secure(&mut response);
    response
}

fn secure(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Serves the storefront in `dir` on `host:port` with `/healthz` (the process answers) and
/// `/readyz` (the build is there), until SIGTERM or Ctrl-C; then lets requests finish.
pub async fn serve(dir: &Path, host: &str, port: u16) -> anyhow::Result<()> {
    let index = dir.join("index.html");
    anyhow::ensure!(
        index.is_file(),
        "no storefront in {}: build it first (make web)",
        dir.display()
    );
    let ready = move || {
        let index = index.clone();
        async move {
            if tokio::fs::metadata(&index).await.is_ok_and(|m| m.is_file()) {
                (StatusCode::OK, "ready")
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the storefront's files are gone",
                )
            }
        }
    };
    let app = Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(ready))
        .merge(storefront(dir));
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    println!(
        "[kommerce web] serving {} on http://{}",
        dir.display(),
        listener.local_addr()?
    );
    kommerce_kit::http::serve(listener, app, kommerce_kit::server::shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_build_are_files() {
        assert_eq!(relative("/assets/a.js"), Some(PathBuf::from("assets/a.js")));
        assert_eq!(relative("/"), Some(PathBuf::new()));
        assert_eq!(relative("/assets/../../etc/passwd"), None);
        assert_eq!(relative("/./index.html"), None);
        assert_eq!(relative("//etc/passwd"), Some(PathBuf::from("etc/passwd")));
    }

    async fn get(base: &str, path: &str) -> (StatusCode, String, String, String) {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (ct, cache) = (header("content-type"), header("cache-control"));
        (r.status(), ct, cache, r.text().await.unwrap())
    }

    #[tokio::test]
    async fn files_pages_and_missing_assets() {
        let dir = std::env::temp_dir().join(format!("kommerce-web-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), "<!doctype html>app").unwrap();
        std::fs::write(dir.join("assets/index-abc.js"), "console.log(1)").unwrap();
        std::fs::write(dir.join("favicon.svg"), "<svg/>").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = storefront(&dir);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let (status, ct, cache, body) = get(&base, "/assets/index-abc.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct, "text/javascript; charset=utf-8");
        assert_eq!(cache, "public, max-age=31536000, immutable");
        assert_eq!(body, "console.log(1)");
        for page in ["/", "/items/7f1c", "/orders/1?x=2", "/favicon.svg/nested"] {
            let (status, ct, cache, body) = get(&base, page).await;
            assert_eq!(
                (status, ct.as_str(), cache.as_str(), body.as_str()),
                (
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    "no-cache",
                    "<!doctype html>app"
                ),
                "{page}"
            );
        }
        let (status, ct, ..) = get(&base, "/favicon.svg").await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/svg+xml"));
        let (status, ..) = get(&base, "/assets/gone-123.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let r = reqwest::Client::new()
            .post(format!("{base}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
