//! One module per resource; `router()` is the whole API surface of the service.

mod addresses;
mod auth;
mod internal;
mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", post(users::signup))
        .route("/api/v1/users/me", get(users::me).patch(users::update_me))
        .route(
            "/api/v1/users/me/addresses",
            get(addresses::list).post(addresses::create),
        )
        .route(
            "/api/v1/users/me/addresses/{id}",
            get(addresses::get)
                .patch(addresses::update)
                .delete(addresses::delete),
        )
        .route(
            "/api/v1/users/me/addresses/{id}/default",
            post(addresses::make_default),
        )
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route(
            "/internal/v1/users/{id}/addresses/{address_id}",
            get(internal::address),
        )
}
