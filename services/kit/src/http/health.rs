//! `GET /healthz` (the process lives: no background worker has been unhealthy past the grace
//! period), `GET /readyz` (its dependencies answer and every worker runs).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::PgPool;

use crate::cache::Redis;
use crate::workers::{LIVENESS_GRACE, WorkerHealth};

/// The dependencies whose failure makes a service unready, and its workers.
#[derive(Debug, Clone)]
pub struct Readiness {
    db: PgPool,
    redis: Redis,
    workers: WorkerHealth,
}

impl Readiness {
    pub fn new(db: PgPool, redis: Redis) -> Self {
        Self {
            db,
            redis,
            workers: WorkerHealth::default(),
        }
    }

    /// Reports these workers too (`Service::bind` does it for the service's workers).
    #[must_use]
    pub fn with_workers(mut self, workers: WorkerHealth) -> Self {
        self.workers = workers;
        self
    }
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn health_routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
        .with_state(readiness)
}

async fn live(State(r): State<Readiness>) -> impl IntoResponse {
    let stuck = r.workers.stuck(LIVENESS_GRACE);
    if stuck.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    } else {
        tracing::error!(?stuck, "workers unhealthy past the grace period: not live");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "failing", "stuck_workers": stuck })),
        )
    }
}

async fn ready(State(r): State<Readiness>) -> impl IntoResponse {
    let db = tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&r.db));
    let redis = tokio::time::timeout(CHECK_TIMEOUT, r.redis.ping());
    let (db, redis) = tokio::join!(db, redis);
    let db_ok = matches!(db, Ok(Ok(_)));
    let redis_ok = matches!(redis, Ok(Ok(())));
    let (workers_ok, workers) = r.workers.report();
    let ok = db_ok && redis_ok && workers_ok;
    let status = if ok {
        StatusCode::OK
    } else {
        tracing::warn!(db_ok, redis_ok, workers_ok, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    (
        status,
        Json(json!({
            "status": word(ok),
            "checks": { "postgres": word(db_ok), "redis": word(redis_ok), "workers": word(workers_ok) },
            "workers": workers,
        })),
    )
}
