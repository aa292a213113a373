//! Service-to-service endpoints under `/internal/v1`, never routed by the Ingress.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kommerce_kit::http::{ApiError, ApiJson, PROBLEM_JSON};
use serde_json::json;
use uuid::Uuid;

use super::{params, path_id};
use crate::AppState;
use crate::domain::stock::{Reservation, ReservationRequest};
use crate::store;
use kommerce_contracts::item::{ItemView, ItemViews};
use kommerce_contracts::money::Money;

/// `GET /internal/v1/items?ids=a,b,c`: price, status and stock of up to 100 items in one call.
pub async fn items(
    State(s): State<AppState>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ItemViews>, ApiError> {
    let p = params(q)?;
    let raw = p.get("ids").map(String::as_str).unwrap_or_default();
    let ids: Result<Vec<Uuid>, _> = raw
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect();
    let ids = ids.map_err(|_| ApiError::field("ids", "must be comma-separated item ids"))?;
    if ids.is_empty() || ids.len() > 100 {
        return Err(ApiError::field("ids", "must name 1 to 100 items"));
    }
    let items = store::items_by_ids(&s.db, &ids).await?;
    Ok(Json(ItemViews {
        items: items
            .into_iter()
            .map(|i| ItemView {
                id: i.id,
                name: i.name,
                price_minor: Money::minor(i.price_minor),
                status: i.status.as_str().to_owned(),
                stock: i.stock,
                deleted: i.deleted_at.is_some(),
            })
            .collect(),
    }))
}

/// `POST /internal/v1/stock/reservations`: all lines or none; 201, or 409 naming the lines;
/// a repeated id gets the first answer.
pub async fn reserve(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<ReservationRequest>,
) -> Result<Response, ApiError> {
    let r = Reservation::try_from(body)?;
    let answer = s.stock.reserve(&r).await?;
    let mut response = (answer.status, Json(answer.body)).into_response();
    if answer.status.is_client_error() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    }
    Ok(response)
}

/// `DELETE /internal/v1/stock/reservations/{id}`: gives the stock back, idempotently.
pub async fn release(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.stock.release(path_id(&id, "reservation")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /internal/v1/stock/policy`: the stock-pool policy this instance applies.
pub async fn policy(State(s): State<AppState>) -> Json<serde_json::Value> {
    let a = s.stock.policy();
    Json(json!({ "policy": a.policy, "hash": a.hash, "instance": s.instance_id }))
}
