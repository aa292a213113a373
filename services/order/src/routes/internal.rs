//! Service-to-service endpoints under `/internal/v1`, never routed by the Ingress.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use kommerce_contracts::order::{CartLineView, CartView, Purchased};
use kommerce_kit::http::{ApiError, Problem, QueryParams, path_id, query_params};
use kommerce_kit::openapi::IntoParams;
use uuid::Uuid;

use crate::AppState;
use crate::store;

/// A user's cart lines (pay).
///
/// Oldest first; a user without a cart has no lines. Pay validates a checkout against them.
#[utoipa::path(
    get,
    path = "/internal/v1/carts/{user_id}",
    operation_id = "internal_get_cart",
    security(("service" = ["pay"])),
    params(("user_id" = Uuid, Path, description = "The user.")),
    responses(
        (status = 200, description = "The user's cart lines.", body = CartView),
        (status = 404, description = "`user_id` is not an id (a user without a cart has an empty one).", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// `?user_id=&item_id=` of the purchase check: both required.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read from the query string by name, declared for the document
pub struct PurchaseQuery {
    /// The buyer.
    user_id: Uuid,
    /// The item bought.
    item_id: Uuid,
}

/// Whether a user bought an item (review).
///
/// True when an order of the user that is not cancelled (nor being cancelled) has a line for
/// the item: the review service's verified-purchase check. Other query parameters are ignored.
#[utoipa::path(
    get,
    path = "/internal/v1/purchases",
    operation_id = "internal_get_purchase",
    security(("service" = ["review"])),
    params(PurchaseQuery),
    responses((status = 200, description = "Whether the user bought the item.", body = Purchased)),
)]
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
