//! `/api/v1/wallet`: the caller's balance, its ledger, and top-ups.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson};
use serde::Deserialize;
use serde_json::json;

use super::idempotency_header;
use crate::AppState;
use crate::domain::payment;
use crate::store;

/// `GET /api/v1/wallet`: balance and the latest 50 ledger entries.
pub async fn get(
    State(s): State<AppState>,
    user: AuthUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut conn = s.db.acquire().await?;
    let (balance, entries) = store::wallet(&mut conn, user.id).await?;
    Ok(Json(
        json!({ "balance_minor": balance, "entries": entries }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    amount_minor: i64,
}

/// `POST /api/v1/wallet/top-up`: bounded; with an `Idempotency-Key` a repeat adds nothing.
pub async fn top_up(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TopUpBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let amount = payment::top_up(body.amount_minor, s.wallet.max_top_up_minor)
        .map_err(|m| ApiError::field("amount_minor", m))?;
    let key = idempotency_header(&headers)
        .map(|k| payment::idempotency_key(Some(k)))
        .transpose()?;
    let mut tx = s.db.begin().await?;
    let balance = store::top_up(&mut tx, user.id, amount, key.as_deref()).await?;
    tx.commit().await?;
    Ok(Json(json!({ "balance_minor": balance })))
}
