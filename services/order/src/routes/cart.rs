//! `/api/v1/cart`: the caller's own cart only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson, Problem, path_id};
use kommerce_kit::openapi::ToSchema;
use kommerce_kit::validate::Fields;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use kommerce_contracts::item::ItemView;
use kommerce_contracts::money::{Money, Quantity};

use super::items;
use crate::AppState;
use crate::domain::cart::{self, AddBody, MAX_LINES, SetBody};
use crate::store::{self, CartLine};

/// The caller's cart, priced now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cart {
    /// Oldest first. A line whose item left the sale stays, with `on_sale` false.
    pub lines: Vec<PricedLine>,
    /// The total of the lines whose item is on sale, at current prices.
    pub subtotal_minor: Money,
}

/// A cart line with its item as the item service shows it now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PricedCartLine)]
pub struct PricedLine {
    /// The line (what a checkout names in `cart_line_ids`).
    pub id: Uuid,
    pub item_id: Uuid,
    #[schema(minimum = 1, maximum = 99)]
    pub qty: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
    /// The item's name; null when the item service does not know the item.
    pub name: Option<String>,
    /// The item's current price; null when the item service does not know the item.
    pub unit_price_minor: Option<Money>,
    /// Whether the item can be bought now: it exists, is not deleted and is on sale.
    pub on_sale: bool,
    /// The item's stock; null when the item service does not know the item.
    pub available: Option<i64>,
}

/// The caller's cart.
///
/// Every line with its item's current name, price, stock and sale status (asked of the item
/// service), and the subtotal of the lines still on sale. A caller without a cart has an
/// empty one.
#[utoipa::path(
    get,
    path = "/api/v1/cart",
    operation_id = "get_cart",
    security(("bearer" = [])),
    responses((status = 200, description = "The cart.", body = Cart)),
)]
pub async fn get(State(s): State<AppState>, user: AuthUser) -> Result<Json<Cart>, ApiError> {
    let lines = store::cart(&s.db, user.id).await?;
    let ids: Vec<_> = lines.iter().map(|l| l.item_id).collect();
    let known = items(&s, &ids).await?;
    let mut priced = Vec::with_capacity(lines.len());
    let out: Vec<_> = lines
        .into_iter()
        .map(|l| {
            let item = known.get(&l.item_id);
            let on_sale = item.is_some_and(ItemView::on_sale);
            if let (true, Some(i)) = (on_sale, item) {
                priced.push((i.price_minor, Quantity::new(l.qty)));
            }
            PricedLine {
                id: l.id,
                item_id: l.item_id,
                qty: l.qty,
                added_at: l.added_at,
                name: item.map(|i| i.name.clone()),
                unit_price_minor: item.map(|i| i.price_minor),
                on_sale,
                available: item.map(|i| i.stock),
            }
        })
        .collect();
    let subtotal_minor = Money::total(priced)
        .ok_or_else(|| ApiError::internal("the cart's subtotal is out of range"))?;
    Ok(Json(Cart {
        lines: out,
        subtotal_minor,
    }))
}

/// Checks with the item service that `item_id` exists and is on sale.
async fn on_sale(s: &AppState, item_id: Uuid) -> Result<(), ApiError> {
    match items(s, &[item_id]).await?.get(&item_id) {
        None => Err(ApiError::field("item_id", "no such item")),
        Some(i) if i.deleted => Err(ApiError::field("item_id", "no such item")),
        Some(i) if !i.on_sale() => Err(ApiError::field("item_id", "is not on sale")),
        Some(_) => Ok(()),
    }
}

/// Puts an item in the caller's cart.
///
/// Starts a line for the item (201), or adds to the line the cart already has for it (200).
/// The item must exist and be on sale (asked of the item service); a line holds at most 99
/// units in total, and a cart at most 50 lines.
#[utoipa::path(
    post,
    path = "/api/v1/cart/items",
    operation_id = "add_cart_line",
    security(("bearer" = [])),
    request_body = AddBody,
    responses(
        (status = 201, description = "A new line for the item.", body = CartLine),
        (status = 200, description = "The item's line, grown by `qty`.", body = CartLine),
        (status = 404, description = "The item's line was removed by a concurrent request while this one added to it; nothing changed.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The cart already holds 50 lines (`cart-full`); a line already there can still grow.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn add(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<AddBody>,
) -> Result<(StatusCode, Json<CartLine>), ApiError> {
    let mut f = Fields::new();
    let qty = f.check("qty", cart::qty(body.qty));
    f.finish()?;
    let qty = qty.ok_or_else(|| ApiError::field("qty", "is required"))?;
    on_sale(&s, body.item_id).await?;
    let mut tx = s.db.begin().await?;
    store::lock_cart(&mut tx, user.id).await?;
    let (status, line) = if let Some(existing) =
        store::cart_line(&mut tx, user.id, body.item_id).await?
    {
        let merged = cart::merged_qty(existing.qty, qty).map_err(|m| ApiError::field("qty", m))?;
        let line = store::set_qty(&mut *tx, user.id, body.item_id, merged)
            .await?
            .ok_or(ApiError::NotFound("cart line"))?;
        (StatusCode::OK, line)
    } else {
        if store::count_lines(&mut tx, user.id).await? >= MAX_LINES {
            return Err(ApiError::conflict(
                "cart-full",
                format!("a cart holds at most {MAX_LINES} lines"),
            ));
        }
        (
            StatusCode::CREATED,
            store::insert_line(&mut tx, user.id, body.item_id, qty).await?,
        )
    };
    tx.commit().await?;
    Ok((status, Json(line)))
}

/// Sets the quantity of a line of the caller's cart.
///
/// The line is the one for the item (404 when the cart has none); the item's sale status is
/// not asked again.
#[utoipa::path(
    patch,
    path = "/api/v1/cart/items/{item_id}",
    operation_id = "set_cart_line_qty",
    security(("bearer" = [])),
    params(("item_id" = Uuid, Path, description = "The item whose line it is.")),
    request_body = SetBody,
    responses(
        (status = 200, description = "The line with its new quantity.", body = CartLine),
        (status = 404, description = "The caller's cart has no line for the item; nothing is created.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn set(
    State(s): State<AppState>,
    user: AuthUser,
    Path(item): Path<String>,
    ApiJson(body): ApiJson<SetBody>,
) -> Result<Json<CartLine>, ApiError> {
    let item = path_id(&item, "cart line")?;
    let qty = cart::qty(body.qty).map_err(|m| ApiError::field("qty", m))?;
    let line = store::set_qty(&s.db, user.id, item, qty)
        .await?
        .ok_or(ApiError::NotFound("cart line"))?;
    Ok(Json(line))
}

/// Removes a line from the caller's cart.
///
/// The line is the one for the item; a second removal is a 404.
#[utoipa::path(
    delete,
    path = "/api/v1/cart/items/{item_id}",
    operation_id = "remove_cart_line",
    security(("bearer" = [])),
    params(("item_id" = Uuid, Path, description = "The item whose line it is.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "The caller's cart has no line for the item.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn remove(
    State(s): State<AppState>,
    user: AuthUser,
    Path(item): Path<String>,
) -> Result<StatusCode, ApiError> {
    let item = path_id(&item, "cart line")?;
    if store::remove_line(&s.db, user.id, item).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("cart line"))
    }
}
