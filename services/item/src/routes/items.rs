use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kommerce_contracts::image::OwnerKind;
use kommerce_kit::auth::AdminUser;
use kommerce_kit::http::{ApiError, ApiJson};
use serde_json::json;
use uuid::Uuid;

use super::{params, path_id};
use crate::domain::catalogue::{ItemBody, ItemPatch, ItemPatchBody, NewItem};
use crate::domain::listing::ListQuery;
use crate::domain::stock::{Adjust, AdjustBody};
use crate::store::{self, Item};
use crate::{AppState, cache};

/// `GET /api/v1/items`: filters, sort, keyset pages.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(s): State<AppState>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = ListQuery::parse(&params(q)?)?;
    let (items, next) = store::list(&s.db, &q).await?;
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}

/// `GET /api/v1/items/{id}`: cache-aside; deleted items still resolve.
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

/// `POST /api/v1/items/{id}/stock` `{delta, reason}`: an admin correction, never below zero.
#[tracing::instrument(skip_all, fields(admin = %admin.id))]
pub async fn adjust_stock(
    State(s): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AdjustBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = path_id(&id, "item")?;
    let a = Adjust::try_from(body)?;
    let stock = s.stock.adjust(id, &a).await?;
    Ok(Json(json!({ "item_id": id, "stock": stock })))
}

/// `GET /api/v1/items/{id}/stock/ledger`: the newest 200 ledger rows (admin); 404 for an id
/// that names no item (a deleted item's ledger stays readable: it explains every unit).
pub async fn ledger(
    State(s): State<AppState>,
    AdminUser(_): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<crate::stock::LedgerRow>>, ApiError> {
    let id = path_id(&id, "item")?;
    if store::item(&s.db, id).await?.is_none() {
        return Err(ApiError::NotFound("item"));
    }
    Ok(Json(crate::stock::ledger(&s.db, id, 200).await?))
}
