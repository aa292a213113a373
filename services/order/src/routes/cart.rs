//! `/api/v1/cart`: the caller's own cart only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson, path_id};
use kommerce_kit::validate::Fields;
use serde_json::json;

use kommerce_contracts::item::ItemView;
use kommerce_contracts::money::{Money, Quantity};

use super::items;
use crate::AppState;
use crate::domain::cart::{self, AddBody, MAX_LINES, SetBody};
use crate::store;

/// `GET /api/v1/cart`: lines with the item's current name, price and sale status.
pub async fn get(
    State(s): State<AppState>,
    user: AuthUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let lines = store::cart(&s.db, user.id).await?;
    let ids: Vec<_> = lines.iter().map(|l| l.item_id).collect();
    let known = items(&s, &ids).await?;
    let mut priced = Vec::with_capacity(lines.len());
    let out: Vec<_> = lines
        .iter()
        .map(|l| {
            let item = known.get(&l.item_id);
            let on_sale = item.is_some_and(ItemView::on_sale);
            if let (true, Some(i)) = (on_sale, item) {
                priced.push((i.price_minor, Quantity::new(l.qty)));
            }
            let mut line = json!(l);
            line["name"] = json!(item.map(|i| i.name.clone()));
            line["unit_price_minor"] = json!(item.map(|i| i.price_minor));
            line["on_sale"] = json!(on_sale);
            line["available"] = json!(item.map(|i| i.stock));
            line
        })
        .collect();
    let subtotal = Money::total(priced)
        .ok_or_else(|| ApiError::internal("the cart's subtotal is out of range"))?;
    Ok(Json(json!({ "lines": out, "subtotal_minor": subtotal })))
}

/// Checks with the item service that `item_id` exists and is on sale.
async fn on_sale(s: &AppState, item_id: uuid::Uuid) -> Result<(), ApiError> {
    match items(s, &[item_id]).await?.get(&item_id) {
        None => Err(ApiError::field("item_id", "no such item")),
        Some(i) if i.deleted => Err(ApiError::field("item_id", "no such item")),
        Some(i) if !i.on_sale() => Err(ApiError::field("item_id", "is not on sale")),
        Some(_) => Ok(()),
    }
}

/// `POST /api/v1/cart/items`: adds to the line of that item (or starts one).
pub async fn add(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<AddBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
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
    Ok((status, Json(json!(line))))
}

/// `PATCH /api/v1/cart/items/{item_id}`: sets the quantity.
pub async fn set(
    State(s): State<AppState>,
    user: AuthUser,
    Path(item): Path<String>,
    ApiJson(body): ApiJson<SetBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let item = path_id(&item, "cart line")?;
    let qty = cart::qty(body.qty).map_err(|m| ApiError::field("qty", m))?;
    let line = store::set_qty(&s.db, user.id, item, qty)
        .await?
        .ok_or(ApiError::NotFound("cart line"))?;
    Ok(Json(json!(line)))
}

/// `DELETE /api/v1/cart/items/{item_id}`.
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
