//! `GET /healthz` (the process lives), `GET /readyz` (its dependencies answer).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::PgPool;

use crate::cache::Redis;

/// The dependencies whose failure makes a service unready.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub db: PgPool,
    pub redis: Redis,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn health_routes(readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
        .with_state(readiness)
}

async fn ready(State(r): State<Readiness>) -> impl IntoResponse {
    let db = tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&r.db));
    let redis = tokio::time::timeout(CHECK_TIMEOUT, r.redis.ping());
    let (db, redis) = tokio::join!(db, redis);
    let db_ok = matches!(db, Ok(Ok(_)));
    let redis_ok = matches!(redis, Ok(Ok(())));
    let status = if db_ok && redis_ok {
        StatusCode::OK
    } else {
        tracing::warn!(db_ok, redis_ok, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    (
        status,
        Json(json!({
            "status": word(db_ok && redis_ok),
            "checks": { "postgres": word(db_ok), "redis": word(redis_ok) },
        })),
    )
}
