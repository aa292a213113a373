//! Service-to-service endpoints under `/internal/v1`, never routed by the Ingress.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kommerce_kit::http::{ApiError, ApiJson, PROBLEM_JSON, Problem};
use kommerce_kit::openapi::{IntoParams, ToSchema};
use serde::Serialize;
use uuid::Uuid;

use super::{params, path_id};
use crate::AppState;
use crate::domain::stock::{PoolPolicy, Reservation, ReservationRequest};
use crate::stock::{ReservationRefusal, Reserved};
use crate::store;
use kommerce_contracts::item::{ItemView, ItemViews};
use kommerce_contracts::money::Money;

/// `GET /internal/v1/items` query parameters (others are ignored).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameter `items` reads
pub struct ItemIds {
    /// Comma-separated item ids (`ids=a,b,c`; empty entries are skipped), 1 to 100 of them.
    #[param(style = Form, explode = false, min_items = 1, max_items = 100)]
    ids: Vec<Uuid>,
}

/// The stock-pool policy an instance applies.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockPolicy {
    pub policy: PoolPolicy,
    /// The hash acknowledged for it: the document's (16 hex digits), `default` when there is
    /// no document, empty when none could be read yet.
    pub hash: String,
    /// This instance's id.
    pub instance: String,
}

/// Items by id, for other services.
///
/// Name, price, status and available stock of up to 100 items in one call, deleted ones
/// included (flagged); an unknown id is absent from the answer.
#[utoipa::path(
    get,
    path = "/internal/v1/items",
    operation_id = "internal_list_items",
    security(("service" = ["order", "pay"])),
    params(ItemIds),
    responses((status = 200, description = "The items found, by id.", body = ItemViews)),
)]
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

/// Reserves stock.
///
/// Every line or none, under the stock-pool policy in force. The first answer to a
/// `reservation_id` is stored and replayed to every repeat of the id, whatever its lines:
/// 201 when it was reserved, 409 when it was refused — or cancelled, when the id's release
/// came first. Called by the checkout saga with the payment's id.
#[utoipa::path(
    post,
    path = "/internal/v1/stock/reservations",
    operation_id = "internal_create_stock_reservation",
    security(("service" = ["order"])),
    request_body = ReservationRequest,
    responses(
        (status = 201, description = "Reserved (or a repeat of a reserved id).", body = Reserved),
        (status = 409, description = "Nothing was reserved (or a repeat of a refused id): `reservation-refused` names the lines that cannot be had (unknown or deleted item, not on sale, not enough stock); `reservation-cancelled` says the id was released before it was reserved.", body = ReservationRefusal, content_type = "application/problem+json"),
        (status = 503, description = "The stock counters or locks are unreachable, the locks could not be had in time, or this id is being answered by another request; nothing was reserved: retry with the same id.", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Releases a reservation.
///
/// Gives its stock back, idempotently: a released, refused or cancelled id releases nothing
/// again, and an id never reserved is cancelled (its reservation, should it arrive later, is
/// refused with `reservation-cancelled`).
#[utoipa::path(
    delete,
    path = "/internal/v1/stock/reservations/{id}",
    operation_id = "internal_delete_stock_reservation",
    security(("service" = ["order"])),
    params(("id" = Uuid, Path, description = "The reservation.")),
    responses((status = 204, description = "Released, or nothing left to release.")),
)]
pub async fn release(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.stock.release(path_id(&id, "reservation")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stock-pool policy in force.
///
/// What this instance applies now, with the hash it acknowledges (the operator's rollout
/// check).
#[utoipa::path(
    get,
    path = "/internal/v1/stock/policy",
    operation_id = "internal_get_stock_policy",
    security(("service" = ["kommerce"])),
    responses((status = 200, description = "The policy in force.", body = StockPolicy)),
)]
pub async fn policy(State(s): State<AppState>) -> Json<StockPolicy> {
    let a = s.stock.policy();
    Json(StockPolicy {
        policy: a.policy.clone(),
        hash: a.hash.clone(),
        instance: s.instance_id,
    })
}
