//! `/api/v1/reviews`: verified-purchase reviews, listings, the rating summary.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::db::is_constraint;
use kommerce_kit::http::{ApiError, ApiJson, FieldError};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{params, path_id};
use crate::AppState;
use crate::domain::listing::{Cursor, Sort, limit};
use crate::domain::review::{NewReview, NewReviewBody, Rating, ReviewPatch, ReviewPatchBody};
use crate::store::{self, Review};
use kommerce_contracts::image::OwnerKind;

fn already_reviewed() -> ApiError {
    ApiError::conflict("review-exists", "you have already reviewed this item")
}

#[tracing::instrument(skip(s, body), fields(user = %user.id))]
pub async fn create(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<NewReviewBody>,
) -> Result<(StatusCode, Json<Review>), ApiError> {
    let new = NewReview::try_from(body)?;
    if !s.orders.purchased(user.id, new.item_id).await? {
        return Err(ApiError::Forbidden(
            "only a customer who bought the item may review it".into(),
        ));
    }
    // Checked before any image is touched; the unique constraint settles a race.
    if store::exists_for(&s.db, user.id, new.item_id).await? {
        return Err(already_reviewed());
    }
    let id = Uuid::now_v7();
    let images: Vec<(usize, Uuid)> = new.image_ids.iter().copied().enumerate().collect();
    s.images
        .attach_all(&images, user.id, OwnerKind::Review, id)
        .await?;
    let stored = async {
        let mut tx = s.db.begin().await?;
        let review = store::insert(&mut tx, id, user.id, &new).await?;
        store::change_rating(
            &mut tx,
            &s.topic,
            new.item_id,
            1,
            i64::from(new.rating.get()),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(review)
    }
    .await;
    match stored {
        Ok(review) => Ok((StatusCode::CREATED, Json(review))),
        Err(e) => {
            s.images.detach_all(&images, OwnerKind::Review, id).await;
            if is_constraint(&e, "reviews_one_per_user_item") {
                Err(already_reviewed())
            } else {
                Err(e.into())
            }
        }
    }
}

#[tracing::instrument(skip(s))]
pub async fn one(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Review>, ApiError> {
    let id = path_id(&id, "review")?;
    store::get(&s.db, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("review"))
}

#[tracing::instrument(skip(s, body), fields(user = %user.id))]
pub async fn update(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewPatchBody>,
) -> Result<Json<Review>, ApiError> {
    let id = path_id(&id, "review")?;
    let patch = ReviewPatch::try_from(body)?;
    let current = store::get(&s.db, id)
        .await?
        .ok_or(ApiError::NotFound("review"))?;
    if current.user_id != user.id {
        return Err(ApiError::Forbidden(
            "only the author may edit a review".into(),
        ));
    }
    let added: Vec<(usize, Uuid)> = patch
        .image_ids
        .iter()
        .flatten()
        .copied()
        .enumerate()
        .filter(|(_, i)| !current.image_ids.contains(i))
        .collect();
    s.images
        .attach_all(&added, user.id, OwnerKind::Review, id)
        .await?;
    let stored = async {
        let mut tx = s.db.begin().await?;
        let Some(old) = store::lock(&mut tx, id).await? else {
            return Ok(None);
        };
        let rating = patch.rating.map_or(old.rating, Rating::get);
        let images = patch
            .image_ids
            .clone()
            .unwrap_or_else(|| old.image_ids.clone());
        let review = store::update(
            &mut tx,
            id,
            rating,
            patch.title.as_deref().unwrap_or(&old.title),
            patch.body.as_deref().unwrap_or(&old.body),
            &images,
        )
        .await?;
        store::change_rating(
            &mut tx,
            &s.topic,
            old.item_id,
            0,
            i64::from(rating) - i64::from(old.rating),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some((old, review)))
    }
    .await;
    let (old, review) = match stored {
        Ok(Some(done)) => done,
        Ok(None) => {
            s.images.detach_all(&added, OwnerKind::Review, id).await;
            return Err(ApiError::NotFound("review"));
        }
        Err(e) => {
            s.images.detach_all(&added, OwnerKind::Review, id).await;
            return Err(e.into());
        }
    };
    // Images the review no longer shows are deleted (idempotent; a failure leaves an orphan,
    // logged).
    let dropped: Vec<Uuid> = old
        .image_ids
        .iter()
        .filter(|i| !review.image_ids.contains(i))
        .copied()
        .collect();
    s.images.delete_each(&dropped).await;
    Ok(Json(review))
}

#[tracing::instrument(skip(s), fields(user = %user.id))]
pub async fn delete(
    State(s): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "review")?;
    let review = store::get(&s.db, id)
        .await?
        .ok_or(ApiError::NotFound("review"))?;
    if review.user_id != user.id && !user.is_admin() {
        return Err(ApiError::Forbidden(
            "only the author or an admin may delete a review".into(),
        ));
    }
    // Images first: if the image service is down, nothing changes (503) and a retry is safe.
    s.images.delete_of(OwnerKind::Review, id).await?;
    let mut tx = s.db.begin().await?;
    let Some(review) = store::lock(&mut tx, id).await? else {
        return Err(ApiError::NotFound("review"));
    };
    store::delete(&mut tx, id).await?;
    store::change_rating(
        &mut tx,
        &s.topic,
        review.item_id,
        -1,
        -i64::from(review.rating),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn item_param(p: &HashMap<String, String>) -> Result<Uuid, ApiError> {
    p.get("item_id")
        .ok_or_else(|| ApiError::field("item_id", "required"))?
        .parse()
        .map_err(|_| ApiError::field("item_id", "must be an id"))
}

/// Reads `sort`, `cursor` and `limit`, naming every bad one.
fn paging(
    p: &HashMap<String, String>,
    sortable: bool,
) -> Result<(Sort, Option<Cursor>, i64), ApiError> {
    let mut errors = Vec::new();
    let sort = match p.get("sort") {
        Some(s) if sortable => Sort::parse(s).unwrap_or_else(|m| {
            errors.push(FieldError::new("sort", m));
            Sort::Newest
        }),
        _ => Sort::Newest,
    };
    let cursor = match p.get("cursor") {
        None => None,
        Some(c) => match Cursor::decode(c, sort) {
            Ok(c) => Some(c),
            Err(m) => {
                errors.push(FieldError::new("cursor", m));
                None
            }
        },
    };
    let limit = limit(p.get("limit").map(String::as_str)).unwrap_or_else(|m| {
        errors.push(FieldError::new("limit", m));
        0
    });
    if errors.is_empty() {
        Ok((sort, cursor, limit))
    } else {
        Err(ApiError::Validation(errors))
    }
}

async fn page(
    s: &AppState,
    filter: (&str, Uuid),
    sort: Sort,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<Json<Value>, ApiError> {
    let mut rows = store::page(&s.db, filter, sort, cursor, limit + 1).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more {
        rows.last().map(|r| r.cursor(sort).encode())
    } else {
        None
    };
    Ok(Json(json!({"items": rows, "next_cursor": next})))
}

#[tracing::instrument(skip(s, query))]
pub async fn list(
    State(s): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = params(query, &["item_id", "sort", "cursor", "limit"])?;
    let item = item_param(&p)?;
    let (sort, cursor, limit) = paging(&p, true)?;
    page(&s, ("item_id", item), sort, cursor.as_ref(), limit).await
}

#[tracing::instrument(skip(s, query), fields(user = %user.id))]
pub async fn mine(
    State(s): State<AppState>,
    user: AuthUser,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = params(query, &["cursor", "limit"])?;
    let (sort, cursor, limit) = paging(&p, false)?;
    page(&s, ("user_id", user.id), sort, cursor.as_ref(), limit).await
}

#[tracing::instrument(skip(s, query))]
pub async fn summary(
    State(s): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = params(query, &["item_id"])?;
    let item = item_param(&p)?;
    let rows = store::histogram(&s.db, item).await?;
    let mut histogram = serde_json::Map::new();
    let (mut count, mut sum) = (0i64, 0i64);
    for stars in 1..=5i16 {
        let n = rows
            .iter()
            .find(|(r, _)| *r == stars)
            .map_or(0, |(_, n)| *n);
        histogram.insert(stars.to_string(), json!(n));
        count += n;
        sum += n * i64::from(stars);
    }
    Ok(Json(json!({
        "item_id": item,
        "count": count,
        "average": average(sum, count),
        "histogram": histogram,
    })))
}

/// The mean rating, as the item service computes it (0 without reviews).
#[allow(clippy::cast_precision_loss)] // counts and sums of 1..=5 stay far below 2^53
pub fn average(sum: i64, count: i64) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum as f64 / count as f64
    }
}
