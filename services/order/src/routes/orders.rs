//! `/api/v1/orders`: the caller's orders; someone else's order is 404 for every verb.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kommerce_contracts::saga::OrderCancelRequested;
use kommerce_kit::auth::{AdminUser, AuthUser};
use kommerce_kit::http::{
    ApiError, Problem, QueryParams, id_cursor_param, limit_param, next_id_cursor, path_id,
    query_params,
};
use kommerce_kit::messaging::{Envelope, Event, publish_in_tx};
use kommerce_kit::openapi::{Page, ToSchema};
use kommerce_kit::saga::{self, NewStep, Step};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::status::{Action, Status, Transition};
use crate::store::{self, Order};
use crate::{AppState, SERVICE};

/// The caller's orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// The `cursor` of the next page; null on the last.
    pub next_cursor: Option<Uuid>,
}

/// An order's status after it was shipped.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ShippedOrder)]
pub struct Shipped {
    pub id: Uuid,
    /// `shipped`, or `delivered` for an order that was already delivered.
    pub status: Status,
}

/// Every step of an order's saga, in the order service and in pay.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderTimeline {
    pub order_id: Uuid,
    /// The saga's id.
    pub payment_id: Uuid,
    /// Oldest first.
    pub steps: Vec<Step>,
}

/// The caller's orders, newest first.
///
/// A page at a time, each order with its lines: `limit` orders (default 20), after `cursor`
/// (the `next_cursor` of the previous page).
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    operation_id = "list_orders",
    security(("bearer" = [])),
    params(Page),
    responses((status = 200, description = "A page of orders.", body = OrderPage)),
)]
pub async fn list(
    State(s): State<AppState>,
    user: AuthUser,
    q: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<OrderPage>, ApiError> {
    let p = query_params(q)?;
    let limit = limit_param(&p, 20, 100)?;
    let cursor = id_cursor_param(&p)?;
    let mut conn = s.db.acquire().await?;
    let orders = store::orders(&mut conn, user.id, cursor, limit).await?;
    let next_cursor = next_id_cursor(&orders, limit, |o| o.id);
    Ok(Json(OrderPage {
        orders,
        next_cursor,
    }))
}

async fn mine(s: &AppState, user: &AuthUser, raw: &str) -> Result<Order, ApiError> {
    let id = path_id(raw, "order")?;
    let mut conn = s.db.acquire().await?;
    store::order(&mut conn, user.id, id, false)
        .await?
        .ok_or(ApiError::NotFound("order"))
}

/// One of the caller's orders.
///
/// With its lines and the address it ships to. Someone else's order is a 404.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    operation_id = "get_order",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    responses((status = 200, description = "The order.", body = Order)),
)]
pub async fn get(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(mine(&s, &user, &id).await?))
}

/// Cancels one of the caller's orders.
///
/// A `created` order becomes `cancel_requested`: pay refunds the payment, then the order is
/// `cancelled` and its stock released. Asking again (`cancel_requested`, `cancelled`) changes
/// nothing and answers the order as it is. An order that has shipped (`shipped`,
/// `delivered`) cannot be cancelled. Someone else's order is a 404.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/cancel",
    operation_id = "cancel_order",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    responses(
        (status = 202, description = "The cancellation is requested (or already was): the order, `cancel_requested` or `cancelled`.", body = Order),
        (status = 409, description = "The order is `shipped` or `delivered` (`order-not-cancellable`); nothing changed.", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Ships an order (admins only).
///
/// Any user's `created` order becomes `shipped`; after this it can no longer be cancelled.
/// Shipping a `shipped` or `delivered` order changes nothing and answers its status. An order
/// whose cancellation was requested (`cancel_requested`, `cancelled`) cannot be shipped.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/ship",
    operation_id = "ship_order",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order (anyone's).")),
    responses(
        (status = 200, description = "The order's status now: `shipped`, or `delivered`.", body = Shipped),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No order by that id.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is `cancel_requested` or `cancelled` (`order-not-shippable`); nothing changed.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn ship(
    State(s): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Shipped>, ApiError> {
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
    Ok(Json(Shipped { id, status }))
}

/// The saga timeline of one of the caller's orders.
///
/// Every step of the order's saga, as recorded by this service and by pay (asked), oldest
/// first. Someone else's order is a 404.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/timeline",
    operation_id = "get_order_timeline",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The order.")),
    responses((status = 200, description = "The timeline.", body = OrderTimeline)),
)]
pub async fn timeline(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<OrderTimeline>, ApiError> {
    let order = mine(&s, &user, &id).await?;
    let mut steps = saga::steps(&s.db, order.payment_id).await?;
    let theirs = s.pay.saga_steps(order.payment_id).await?;
    steps.extend(theirs);
    steps.sort_by_key(|st| st.at);
    Ok(Json(OrderTimeline {
        order_id: order.id,
        payment_id: order.payment_id,
        steps,
    }))
}
