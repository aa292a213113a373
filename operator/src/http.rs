//! `GET /metrics` (Prometheus) and `GET /healthz` (the process serves requests).

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running HTTP server.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    /// Resolves when the server has stopped.
    pub stopped: JoinHandle<std::io::Result<()>>,
}

pub fn router() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    crate::metrics::render(),
                )
            }),
        )
}

/// Binds `addr` (port 0 picks one) and serves until `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let stopped = tokio::spawn(async move {
        axum::serve(listener, router())
            .with_graceful_shutdown(stop)
            .await
    });
    Ok(Running { addr, stopped })
}
