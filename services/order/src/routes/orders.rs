//! `/api/v1/orders`: the caller's orders; someone else's order is 404 for every verb.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kommerce_contracts::saga::OrderCancelRequested;
use kommerce_kit::auth::{AdminUser, AuthUser};
use kommerce_kit::http::{
    ApiError, QueryParams, id_cursor_param, limit_param, next_id_cursor, path_id, query_params,
};
use kommerce_kit::messaging::{Envelope, Event, publish_in_tx};
use kommerce_kit::saga::{self, NewStep};
use serde_json::json;
use uuid::Uuid;

use crate::domain::status::{Action, Transition};
use crate::store::{self, Order};
use crate::{AppState, SERVICE};

/// `GET /api/v1/orders?limit=&cursor=`: mine, newest first.
pub async fn list(
    State(s): State<AppState>,
    user: AuthUser,
    q: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = query_params(q)?;
    let limit = limit_param(&p, 20, 100)?;
    let cursor = id_cursor_param(&p)?;
    let mut conn = s.db.acquire().await?;
    let orders = store::orders(&mut conn, user.id, cursor, limit).await?;
    let next = next_id_cursor(&orders, limit, |o| o.id);
    Ok(Json(json!({ "orders": orders, "next_cursor": next })))
}

async fn mine(s: &AppState, user: &AuthUser, raw: &str) -> Result<Order, ApiError> {
    let id = path_id(raw, "order")?;
    let mut conn = s.db.acquire().await?;
    store::order(&mut conn, user.id, id, false)
        .await?
        .ok_or(ApiError::NotFound("order"))
}

/// `GET /api/v1/orders/{id}`.
pub async fn get(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(mine(&s, &user, &id).await?))
}

/// `POST /api/v1/orders/{id}/cancel`: 202 — pay refunds, then the order is cancelled and its
/// stock released. Asking again changes nothing; a shipped order is 409.
pub async fn cancel(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    let id = path_id(&id, "order")?;
    let mut tx = s.db.begin().await?;
    let order = store::order(&mut tx, user.id, id, true)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    match order.status.apply(Action::RequestCancel) {
        Transition::Refused(why) => Err(ApiError::conflict("order-not-cancellable", why)),
        Transition::Unchanged => Ok((StatusCode::ACCEPTED, Json(order))),
        Transition::To(next) => {
            store::set_status(&mut tx, order.id, next).await?;
            let event = OrderCancelRequested {
                order_id: order.id,
                payment_id: order.payment_id,
                user_id: user.id,
            };
            let envelope = Envelope::new(&event).map_err(ApiError::internal)?;
            publish_in_tx(&mut tx, &s.orders_topic, &envelope).await?;
            saga::record(
                &mut tx,
                NewStep {
                    saga_id: order.payment_id,
                    order_id: Some(order.id),
                    service: SERVICE,
                    step: OrderCancelRequested::TYPE,
                    outcome: "cancel requested by the customer",
                    detail: None,
                },
            )
            .await?;
            let order = store::order(&mut tx, user.id, id, false)
                .await?
                .ok_or(ApiError::NotFound("order"))?;
            tx.commit().await?;
            Ok((StatusCode::ACCEPTED, Json(order)))
        }
    }
}

/// `POST /api/v1/orders/{id}/ship` (admin): after this the order can no longer be cancelled.
pub async fn ship(
    State(s): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = path_id(&id, "order")?;
    let mut tx = s.db.begin().await?;
    let owner: Option<Uuid> = sqlx::query_scalar("SELECT user_id FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let owner = owner.ok_or(ApiError::NotFound("order"))?;
    let order = store::order(&mut tx, owner, id, true)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    let status = match order.status.apply(Action::Ship) {
        Transition::Refused(why) => return Err(ApiError::conflict("order-not-shippable", why)),
        Transition::Unchanged => order.status,
        Transition::To(next) => {
            store::set_status(&mut tx, id, next).await?;
            saga::record(
                &mut tx,
                NewStep {
                    saga_id: order.payment_id,
                    order_id: Some(id),
                    service: SERVICE,
                    step: "order.shipped",
                    outcome: "shipped",
                    detail: None,
                },
            )
            .await?;
            next
        }
    };
    tx.commit().await?;
    // The status the order has now: shipping a delivered order leaves it delivered.
    Ok(Json(json!({ "id": id, "status": status.as_str() })))
}

/// `GET /api/v1/orders/{id}/timeline`: every step of the order's saga, in this service and in
/// pay, oldest first.
pub async fn timeline(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let order = mine(&s, &user, &id).await?;
    let mut steps = saga::steps(&s.db, order.payment_id).await?;
    let theirs = s.pay.saga_steps(order.payment_id).await?;
    steps.extend(theirs);
    steps.sort_by_key(|st| st.at);
    Ok(Json(json!({
        "order_id": order.id, "payment_id": order.payment_id, "steps": steps,
    })))
}
