//! Service-to-service endpoints under `/internal/v1`, never routed by the Ingress.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use kommerce_contracts::order::{CartLineView, CartView, Purchased};
use kommerce_kit::http::{ApiError, QueryParams, path_id, query_params};
use uuid::Uuid;

use crate::AppState;
use crate::store;

/// `GET /internal/v1/carts/{user_id}`: the user's cart lines (pay validates a checkout here).
pub async fn cart(
    State(s): State<AppState>,
    Path(user): Path<String>,
) -> Result<Json<CartView>, ApiError> {
    let user = path_id(&user, "cart")?;
    let lines = store::cart(&s.db, user).await?;
    Ok(Json(CartView {
        user_id: user,
        lines: lines
            .into_iter()
            .map(|l| CartLineView {
                id: l.id,
                item_id: l.item_id,
                qty: l.qty,
            })
            .collect(),
    }))
}

/// `GET /internal/v1/purchases?user_id=&item_id=`: whether the user bought the item (an order
/// that is not cancelled has a line for it) — the review service's verified-purchase check.
pub async fn purchases(
    State(s): State<AppState>,
    q: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Purchased>, ApiError> {
    let p = query_params(q)?;
    let id = |name: &str| -> Result<Uuid, ApiError> {
        p.get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ApiError::field(name.to_owned(), "must be an id"))
    };
    let (user, item) = (id("user_id")?, id("item_id")?);
    let purchased = store::purchased(&s.db, user, item).await?;
    Ok(Json(Purchased { purchased }))
}
