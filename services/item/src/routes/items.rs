use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kommerce_contracts::image::OwnerKind;
use kommerce_kit::auth::AdminUser;
use kommerce_kit::http::{ApiError, ApiJson, Problem};
use kommerce_kit::openapi::{IntoParams, ToSchema};
use serde::Serialize;
use uuid::Uuid;

use super::{params, path_id};
use crate::domain::catalogue::{ItemBody, ItemPatch, ItemPatchBody, NewItem};
use crate::domain::listing::{ListQuery, Sort};
use crate::domain::stock::{Adjust, AdjustBody};
use crate::stock::LedgerRow;
use crate::store::{self, Item};
use crate::{AppState, cache};

/// `GET /api/v1/items` query parameters: any other parameter is a 422 naming it.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters `ListQuery::parse` reads
pub struct ListParams {
    /// Items of this category or of any of its sub-categories (default: every category).
    #[param(nullable = false)]
    category: Option<Uuid>,
    /// Keywords: every word matches a word of the name or the description as a prefix, or
    /// the text is similar to the name (typos forgiven). Trimmed; at most 100 characters, with
    /// at least one letter or digit.
    #[param(nullable = false, max_length = 100, pattern = r"[^\W_]")]
    q: Option<String>,
    /// Lowest price, in minor units, inclusive.
    #[param(nullable = false, minimum = 0)]
    min_price: Option<i64>,
    /// Highest price, in minor units, inclusive; not below `min_price`.
    #[param(nullable = false, minimum = 0)]
    max_price: Option<i64>,
    /// Only items with available stock (`true` or `1`; `false` or `0`, the default, for all).
    #[param(nullable = false)]
    in_stock: Option<bool>,
    /// The order (default `newest`); ties are broken by id.
    #[param(nullable = false, inline)]
    sort: Option<Sort>,
    /// `next_cursor` of the previous page, with the same `sort`.
    #[param(nullable = false)]
    cursor: Option<String>,
    /// How many to return (default 20).
    #[param(nullable = false, minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// A page of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// The `cursor` of the next page; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// An item's available stock after a correction.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemStock {
    pub item_id: Uuid,
    pub stock: i64,
}

/// The catalogue.
///
/// Items on sale or sold out (never hidden or deleted ones), filtered, sorted and paged by
/// keyset: follow `next_cursor` with the same filters and `sort`. Anyone may read it. Every
/// unacceptable parameter, and any unknown one, is a 422 naming it.
#[utoipa::path(
    get,
    path = "/api/v1/items",
    operation_id = "list_items",
    params(ListParams),
    responses((status = 200, description = "A page of items.", body = ItemPage)),
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(s): State<AppState>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ItemPage>, ApiError> {
    let q = ListQuery::parse(&params(q)?)?;
    let (items, next_cursor) = store::list(&s.db, &q).await?;
    Ok(Json(ItemPage { items, next_cursor }))
}

/// One item.
///
/// Its product page, cached; hidden and deleted items still resolve (`deleted_at` says so:
/// old orders show them). Anyone may read it.
#[utoipa::path(
    get,
    path = "/api/v1/items/{id}",
    operation_id = "get_item",
    params(("id" = Uuid, Path, description = "The item.")),
    responses((status = 200, description = "The item.", body = Item)),
)]
#[tracing::instrument(skip(s))]
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = path_id(&id, "item")?;
    let json = if let Some(hit) = cache::get(&s.redis, id).await {
        hit
    } else {
        let item = store::item(&s.db, id)
            .await?
            .ok_or(ApiError::NotFound("item"))?;
        let json = serde_json::to_string(&item).map_err(ApiError::internal)?;
        cache::put(&s.redis, id, &json, s.live.get().cache.ttl_secs).await;
        json
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

async fn changed(s: &AppState, id: Uuid) {
    cache::forget(&s.redis, &[cache::key(&s.redis, id)]).await;
}

/// Creates an item.
///
/// With its initial stock (a ledger row) and its images, attached all or none. Admins only.
#[utoipa::path(
    post,
    path = "/api/v1/items",
    operation_id = "create_item",
    security(("bearer" = [])),
    request_body = ItemBody,
    responses(
        (status = 201, description = "Created.", body = Item,
            headers(("Location" = String, description = "The item."))),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The image service (when images are given) or a dependency is down; nothing was created.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn create(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<ItemBody>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewItem::try_from(body)?;
    let id = Uuid::now_v7();
    let images: Vec<(usize, Uuid)> = new.image_ids.iter().copied().enumerate().collect();
    s.images
        .attach_all(&images, admin.id, OwnerKind::Item, id)
        .await?;
    let item = match store::create_item(&s.db, id, &new).await {
        Ok(item) => item,
        Err(e) => {
            s.images.detach_all(&images, OwnerKind::Item, id).await;
            return Err(e.into());
        }
    };
    let location = format!("/api/v1/items/{}", item.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(item),
    ))
}

/// Changes an item.
///
/// Any of its fields but stock (which changes through `POST /api/v1/items/{id}/stock`). New
/// images are attached first (a refusal changes nothing), dropped ones deleted after. A
/// deleted item cannot change (404). Admins only.
#[utoipa::path(
    patch,
    path = "/api/v1/items/{id}",
    operation_id = "update_item",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item.")),
    request_body = ItemPatchBody,
    responses(
        (status = 200, description = "The item as changed.", body = Item),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The image service (when images change) or a dependency is down; nothing was changed.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn update(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ItemPatchBody>,
) -> Result<Json<Item>, ApiError> {
    let id = path_id(&id, "item")?;
    let patch = ItemPatch::try_from(body)?;
    // New images are attached first (a refusal changes nothing); dropped ones are deleted
    // after the update.
    let before = match &patch.image_ids {
        Some(_) => Some(
            store::item(&s.db, id)
                .await?
                .filter(|i| i.deleted_at.is_none())
                .ok_or(ApiError::NotFound("item"))?
                .image_ids,
        ),
        None => None,
    };
    let added: Vec<(usize, Uuid)> = patch
        .image_ids
        .iter()
        .flatten()
        .copied()
        .enumerate()
        .filter(|(_, i)| !before.iter().flatten().any(|b| b == i))
        .collect();
    s.images
        .attach_all(&added, admin.id, OwnerKind::Item, id)
        .await?;
    let item = match store::update_item(&s.db, id, &patch).await {
        Ok(item) => item,
        Err(e) => {
            s.images.detach_all(&added, OwnerKind::Item, id).await;
            return Err(e.into());
        }
    };
    let dropped: Vec<Uuid> = before
        .iter()
        .flatten()
        .filter(|b| !item.image_ids.contains(b))
        .copied()
        .collect();
    s.images.delete_each(&dropped).await;
    if patch.status.is_some() {
        s.stock.status_changed(id).await;
    }
    changed(&s, id).await;
    Ok(Json(item))
}

/// Deletes an item.
///
/// Softly: it leaves the listing and cannot be reserved or changed, but its page and its
/// ledger still resolve. Its images are deleted first. Admins only.
#[utoipa::path(
    delete,
    path = "/api/v1/items/{id}",
    operation_id = "delete_item",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The image service or a dependency is down; nothing was changed (a retry is safe).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn delete(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "item")?;
    let item = store::item(&s.db, id)
        .await?
        .filter(|i| i.deleted_at.is_none())
        .ok_or(ApiError::NotFound("item"))?;
    // Images first: if the image service is down nothing changes (503), and a retry is safe.
    if !item.image_ids.is_empty() {
        s.images.delete_of(OwnerKind::Item, id).await?;
    }
    store::delete_item(&s.db, id).await?;
    s.stock.status_changed(id).await;
    changed(&s, id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Corrects an item's stock.
///
/// Adds or takes away units (breakage, a delivery), recorded in the ledger with the reason;
/// stock never goes below zero. Admins only.
#[utoipa::path(
    post,
    path = "/api/v1/items/{id}/stock",
    operation_id = "adjust_item_stock",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item.")),
    request_body = AdjustBody,
    responses(
        (status = 200, description = "Corrected: the available stock now.", body = ItemStock),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stock would go below zero, or the units are promised to reservations in flight (`insufficient-stock`); nothing was changed.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn adjust_stock(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AdjustBody>,
) -> Result<Json<ItemStock>, ApiError> {
    let id = path_id(&id, "item")?;
    let a = Adjust::try_from(body)?;
    let stock = s.stock.adjust(id, &a).await?;
    Ok(Json(ItemStock { item_id: id, stock }))
}

/// An item's stock ledger.
///
/// The newest 200 rows, newest first: they explain every unit of its stock. A deleted item's
/// ledger stays readable. Admins only.
#[utoipa::path(
    get,
    path = "/api/v1/items/{id}/stock/ledger",
    operation_id = "list_item_stock_ledger",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The item.")),
    responses(
        (status = 200, description = "The newest 200 ledger rows, newest first.", body = [LedgerRow]),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn ledger(
    State(s): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<LedgerRow>>, ApiError> {
    let id = path_id(&id, "item")?;
    if store::item(&s.db, id).await?.is_none() {
        return Err(ApiError::NotFound("item"));
    }
    Ok(Json(crate::stock::ledger(&s.db, id, 200).await?))
}
