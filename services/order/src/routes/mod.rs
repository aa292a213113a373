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
use crate::domain::cart::ItemView;

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

#[derive(serde::Deserialize)]
struct Items {
    items: Vec<ItemView>,
}

/// The item service's view of `ids` (absent ids are simply missing from the map).
pub(crate) async fn items(s: &AppState, ids: &[Uuid]) -> Result<HashMap<Uuid, ItemView>, ApiError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let reply = s
        .item
        .get(&format!("/internal/v1/items?ids={}", list.join(",")))
        .await?;
    let items: Items = reply.json("item")?;
    Ok(items.items.into_iter().map(|i| (i.id, i)).collect())
}
