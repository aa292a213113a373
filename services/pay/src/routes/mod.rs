//! One module per resource; `router()` is the whole API surface of the service.

mod payments;
mod wallet;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/wallet", get(wallet::get))
        .route("/api/v1/wallet/top-up", post(wallet::top_up))
        .route(
            "/api/v1/payments",
            get(payments::list).post(payments::create),
        )
        .route("/api/v1/payments/{id}", get(payments::get))
        .merge(kommerce_kit::saga::router())
}
