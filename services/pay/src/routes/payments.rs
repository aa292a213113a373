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
    ApiError, ApiJson, FieldError, IdempotencyKey, QueryParams, id_cursor_param, limit_param,
    next_id_cursor, path_id, query_params,
};
use kommerce_kit::messaging::{Envelope, publish_in_tx};
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::domain::payment::{Method, PaymentBody, PaymentRequest};
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

/// `POST /api/v1/payments` (`Idempotency-Key` required): 201 `pending_order`; 422 when the
/// amount is not the total at current prices (naming it), 402 when the wallet cannot cover it.
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
    let response = json!({
        "id": id, "status": "pending_order", "amount_minor": total,
        "method": req.method.as_str(), "address_id": req.address_id, "lines": lines_json,
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

/// `GET /api/v1/payments/{id}`: someone else's is 404.
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

/// `GET /api/v1/payments?limit=&cursor=`: mine, newest first.
pub async fn list(
    State(s): State<AppState>,
    user: AuthUser,
    q: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = query_params(q)?;
    let limit = limit_param(&p, 20, 100)?;
    let cursor = id_cursor_param(&p)?;
    let payments = store::payments(&s.db, user.id, cursor, limit).await?;
    let next = next_id_cursor(&payments, limit, |p| p.id);
    Ok(Json(json!({ "payments": payments, "next_cursor": next })))
}
