//! `/api/v1/payments`: checkout. A payment is validated against the caller's cart (order),
//! address (user) and the current prices (item), charged, and stored with its
//! `payment.completed` event in one transaction.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kommerce_contracts::money::{Money, Quantity};
use kommerce_contracts::order::CartLineView;
use kommerce_contracts::saga::{PaidLine, PaymentCompleted};
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{
    ApiError, ApiJson, FieldError, IdempotencyKey, Problem, QueryParams, id_cursor_param,
    limit_param, next_id_cursor, path_id, query_params,
};
use kommerce_kit::messaging::{Envelope, publish_in_tx};
use kommerce_kit::openapi::{Page, RequiredIdempotencyHeader, ToSchema};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::domain::payment::{Method, PaymentBody, PaymentRequest};
use crate::domain::status::Status;
use crate::store::{self, NewPayment, Payment};

/// The first response to a key, returned again (201) to a repeat of the same request.
fn replay(first: &Payment, fingerprint: &str) -> Result<Response, ApiError> {
    if first.request_hash != fingerprint {
        return Err(ApiError::field(
            "Idempotency-Key",
            "was already used with a different request",
        ));
    }
    let mut response = (StatusCode::CREATED, Json(first.response.clone())).into_response();
    response.headers_mut().insert(
        "idempotent-replayed",
        axum::http::HeaderValue::from_static("true"),
    );
    Ok(response)
}

/// The selected lines as charged: every line the caller's, every item on sale, at its
/// current price.
async fn priced_lines(
    s: &AppState,
    user: Uuid,
    req: &PaymentRequest,
) -> Result<Vec<PaidLine>, ApiError> {
    let cart = s.order.cart(user).await?;
    let mine: HashMap<Uuid, &CartLineView> = cart.lines.iter().map(|l| (l.id, l)).collect();
    let mut chosen = Vec::with_capacity(req.cart_line_ids.len());
    for id in &req.cart_line_ids {
        // Someone else's line and no line at all look the same.
        chosen.push(*mine.get(id).ok_or(ApiError::NotFound("cart line"))?);
    }
    let ids: Vec<Uuid> = chosen.iter().map(|l| l.item_id).collect();
    let items = s.item.items(&ids).await?;
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(chosen.len());
    for (i, line) in chosen.iter().enumerate() {
        match items.get(&line.item_id) {
            Some(item) if item.on_sale() => lines.push(PaidLine {
                item_id: item.id,
                name: item.name.clone(),
                unit_price_minor: item.price_minor,
                qty: Quantity::new(line.qty),
            }),
            _ => errors.push(FieldError::new(
                format!("cart_line_ids[{i}]"),
                "the item is no longer on sale",
            )),
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The simulated card network: it takes its time and sometimes declines.
async fn card(s: &AppState) -> Result<(), ApiError> {
    let card = s.live.get().card.clone();
    if card.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(card.latency_ms)).await;
    }
    let roll: f64 = rand::rng().random();
    if roll < card.failure_rate {
        return Err(ApiError::PaymentRequired(
            "the card was declined; nothing was charged".into(),
        ));
    }
    Ok(())
}

/// A payment as first accepted: charged, its order still to be made by the saga.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PaymentAccepted)]
pub struct Accepted {
    pub id: Uuid,
    /// Always `pending_order`: follow it with `GET /api/v1/payments/{id}`.
    pub status: Status,
    pub amount_minor: Money,
    pub method: Method,
    pub address_id: Uuid,
    pub lines: Vec<PaidLine>,
}

/// The caller's payments, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentPage {
    pub payments: Vec<Payment>,
    /// The `cursor` of the next page; absent on the last.
    pub next_cursor: Option<Uuid>,
}

/// Checkout: pays for cart lines.
///
/// Validates the selected cart lines, the address and the amount against current prices,
/// charges, and starts the saga that makes the order. A repeat of the key answers as the
/// first request did (`Idempotent-Replayed: true`).
#[utoipa::path(
    post,
    path = "/api/v1/payments",
    operation_id = "create_payment",
    security(("bearer" = [])),
    params(RequiredIdempotencyHeader),
    request_body = PaymentBody,
    responses(
        (status = 201, description = "Charged; the order follows.", body = Accepted,
            headers(("Location" = String, description = "The payment."),
                    ("Idempotent-Replayed" = String, description = "`true` on a repeat of the key."))),
        (status = 402, description = "The wallet does not hold the amount, or the card was declined; nothing was charged.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A cart line or the address is not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A service the check needs is down; nothing was charged.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.id))]
pub async fn create(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PaymentBody>,
) -> Result<Response, ApiError> {
    let key = IdempotencyKey::required(&headers)?.into_string();
    let req = PaymentRequest::try_from(body)?;
    let fingerprint = req.fingerprint();
    if let Some(first) = store::by_key(&s.db, user.id, &key).await? {
        return replay(&first, &fingerprint);
    }
    let lines = priced_lines(&s, user.id, &req).await?;
    let address = s
        .user
        .address(user.id, req.address_id)
        .await?
        .ok_or(ApiError::NotFound("address"))?;
    let total = Money::total(lines.iter().map(|l| (l.unit_price_minor, l.qty)))
        .ok_or_else(|| ApiError::field("amount_minor", "the total is out of range"))?;
    if total != Money::minor(req.amount_minor) {
        return Err(ApiError::field(
            "amount_minor",
            format!("must be {total}: the selected lines at current prices"),
        ));
    }
    if req.method == Method::Card {
        card(&s).await?;
    }
    let id = Uuid::now_v7();
    let lines_json = json!(lines);
    let response = json!(Accepted {
        id,
        status: Status::PendingOrder,
        amount_minor: total,
        method: req.method,
        address_id: req.address_id,
        lines: lines.clone(),
    });
    let mut tx = s.db.begin().await?;
    let fresh = store::insert_payment(
        &mut tx,
        &NewPayment {
            id,
            user_id: user.id,
            key: &key,
            request_hash: &fingerprint,
            method: req.method.as_str(),
            amount_minor: total.as_minor(),
            address_id: req.address_id,
            lines: &lines_json,
            response: &response,
        },
    )
    .await?;
    if !fresh {
        // The same key raced us here and won: answer as a repeat.
        tx.rollback().await?;
        let first = store::by_key(&s.db, user.id, &key)
            .await?
            .ok_or(ApiError::NotFound("payment"))?;
        return replay(&first, &fingerprint);
    }
    if req.method == Method::Wallet
        && !store::charge(&mut tx, user.id, id, total.as_minor()).await?
    {
        tx.rollback().await?;
        return Err(ApiError::PaymentRequired(format!(
            "the wallet does not hold {total}; nothing was charged"
        )));
    }
    let event = PaymentCompleted {
        payment_id: id,
        user_id: user.id,
        amount_minor: total,
        method: req.method.as_str().to_owned(),
        lines,
        address,
    };
    let envelope = Envelope::new(&event).map_err(ApiError::internal)?;
    publish_in_tx(&mut tx, &s.payments_topic, &envelope).await?;
    crate::events::charged(&mut tx, id, req.method.as_str()).await?;
    tx.commit().await?;
    metrics::counter!("payments_created_total", "method" => req.method.as_str()).increment(1);
    let mut out = (StatusCode::CREATED, Json(response)).into_response();
    if let Ok(location) = format!("/api/v1/payments/{id}").parse() {
        out.headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    Ok(out)
}

/// One of the caller's payments.
///
/// With its saga's outcome: the order once it exists, or the refund and its reason.
/// Someone else's is a 404.
#[utoipa::path(
    get,
    path = "/api/v1/payments/{id}",
    operation_id = "get_payment",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The payment.")),
    responses((status = 200, description = "The payment.", body = Payment)),
)]
pub async fn get(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    let id = path_id(&id, "payment")?;
    store::payment(&s.db, user.id, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("payment"))
}

/// The caller's payments, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/payments",
    operation_id = "list_payments",
    security(("bearer" = [])),
    params(Page),
    responses((status = 200, description = "A page of payments.", body = PaymentPage)),
)]
pub async fn list(
    State(s): State<AppState>,
    user: AuthUser,
    q: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<PaymentPage>, ApiError> {
    let p = query_params(q)?;
    let limit = limit_param(&p, 20, 100)?;
    let cursor = id_cursor_param(&p)?;
    let payments = store::payments(&s.db, user.id, cursor, limit).await?;
    let next_cursor = next_id_cursor(&payments, limit, |p| p.id);
    Ok(Json(PaymentPage {
        payments,
        next_cursor,
    }))
}
