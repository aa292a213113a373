//! One module per resource; `router()` is the whole API surface of the service.

mod cart;
mod internal;
mod orders;

use std::collections::HashMap;

use axum::Router;
use axum::routing::{get, patch, post};
use kommerce_kit::http::ApiError;
use uuid::Uuid;

use crate::AppState;
use kommerce_contracts::item::ItemView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cart", get(cart::get))
        .route("/api/v1/cart/items", post(cart::add))
        .route(
            "/api/v1/cart/items/{item_id}",
            patch(cart::set).delete(cart::remove),
        )
        .route("/api/v1/orders", get(orders::list))
        .route("/api/v1/orders/{id}", get(orders::get))
        .route("/api/v1/orders/{id}/cancel", post(orders::cancel))
        .route("/api/v1/orders/{id}/ship", post(orders::ship))
        .route("/api/v1/orders/{id}/timeline", get(orders::timeline))
        .route("/internal/v1/carts/{user_id}", get(internal::cart))
        .route("/internal/v1/purchases", get(internal::purchases))
        .merge(kommerce_kit::saga::router())
}

/// The item service's view of `ids` (absent ids are simply missing from the map).
pub(crate) async fn items(s: &AppState, ids: &[Uuid]) -> Result<HashMap<Uuid, ItemView>, ApiError> {
    Ok(s.item.items(ids).await?)
}
