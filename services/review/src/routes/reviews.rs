//! `/api/v1/reviews`: verified-purchase reviews, listings, the rating summary.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::db::is_constraint;
use kommerce_kit::http::{ApiError, ApiJson, FieldError, Problem};
use kommerce_kit::openapi::{IntoParams, ToSchema};
use serde::Serialize;
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

/// A page of reviews.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPage {
    pub items: Vec<Review>,
    /// The `cursor` of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// How many reviews give each number of stars (every key is present).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RatingHistogram)]
pub struct Histogram {
    #[serde(rename = "1")]
    #[schema(minimum = 0)]
    pub one: i64,
    #[serde(rename = "2")]
    #[schema(minimum = 0)]
    pub two: i64,
    #[serde(rename = "3")]
    #[schema(minimum = 0)]
    pub three: i64,
    #[serde(rename = "4")]
    #[schema(minimum = 0)]
    pub four: i64,
    #[serde(rename = "5")]
    #[schema(minimum = 0)]
    pub five: i64,
}

/// An item's ratings: how many, their mean and how they spread.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewSummary {
    pub item_id: Uuid,
    #[schema(minimum = 0)]
    pub count: i64,
    /// The mean rating; 0 without reviews.
    #[schema(minimum = 0, maximum = 5)]
    pub average: f64,
    pub histogram: Histogram,
}

/// The query of `GET /api/v1/reviews`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it with the kit's parser
pub struct ListQuery {
    /// The item whose reviews to list.
    pub item_id: Uuid,
    /// The order (default `newest`).
    #[param(inline, nullable = false)]
    pub sort: Option<Sort>,
    /// `next_cursor` of the previous page, listed with the same `sort`.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// How many to return (default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<i64>,
}

/// The query of `GET /api/v1/reviews/mine`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it with the kit's parser
pub struct MineQuery {
    /// `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// How many to return (default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<i64>,
}

/// The query of `GET /api/v1/reviews/summary`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it with the kit's parser
pub struct SummaryQuery {
    /// The item to summarise.
    pub item_id: Uuid,
}

/// Reviews an item the caller bought.
///
/// Only a customer with a paid, not-cancelled order for the item may review it (asked of the
/// order service), once per item. The images (`image_ids`, the caller's own unattached
/// uploads) are attached all or none; a refused one is a 422 naming `image_ids[i]`. The
/// item's rating totals change with the review and reach the item service as
/// `review.rating-changed`.
#[utoipa::path(
    post,
    path = "/api/v1/reviews",
    operation_id = "create_review",
    security(("bearer" = [])),
    request_body = NewReviewBody,
    responses(
        (status = 201, description = "The review.", body = Review),
        (status = 403, description = "The caller never bought the item.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller has already reviewed the item (`review-exists`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The order or the image service (or the database) is unavailable; nothing was changed.", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// One review.
///
/// Anyone may read it, without a token.
#[utoipa::path(
    get,
    path = "/api/v1/reviews/{id}",
    operation_id = "get_review",
    params(("id" = Uuid, Path, description = "The review.")),
    responses((status = 200, description = "The review.", body = Review)),
)]
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

/// Edits the caller's review.
///
/// Only its author may (an admin may not). Absent fields stay as they are; at least one must
/// be given. `image_ids` replaces the review's images: new ones are attached as on creation
/// (all or none, a refused one is a 422 naming `image_ids[i]`), those left out are deleted.
/// A changed rating changes the item's totals.
#[utoipa::path(
    patch,
    path = "/api/v1/reviews/{id}",
    operation_id = "update_review",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The review.")),
    request_body = ReviewPatchBody,
    responses(
        (status = 200, description = "The review as changed.", body = Review),
        (status = 403, description = "The caller is not the author.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The image service (or the database) is unavailable; nothing was changed.", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Deletes a review.
///
/// Its author or an admin may. Its images are deleted with it and the item's totals drop
/// the rating.
#[utoipa::path(
    delete,
    path = "/api/v1/reviews/{id}",
    operation_id = "delete_review",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The review.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is neither the author nor an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The image service (or the database) is unavailable; nothing was changed.", body = Problem, content_type = "application/problem+json"),
    ),
)]
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
) -> Result<Json<ReviewPage>, ApiError> {
    let mut rows = store::page(&s.db, filter, sort, cursor, limit + 1).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        rows.last().map(|r| r.cursor(sort).encode())
    } else {
        None
    };
    Ok(Json(ReviewPage {
        items: rows,
        next_cursor,
    }))
}

/// An item's reviews.
///
/// Anyone may list them, without a token: newest first by default, or by rating (ties newest
/// first). A cursor is only good for the `sort` it was listed with.
#[utoipa::path(
    get,
    path = "/api/v1/reviews",
    operation_id = "list_reviews",
    params(ListQuery),
    responses((status = 200, description = "A page of the item's reviews.", body = ReviewPage)),
)]
#[tracing::instrument(skip(s, query))]
pub async fn list(
    State(s): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ReviewPage>, ApiError> {
    let p = params(query, &["item_id", "sort", "cursor", "limit"])?;
    let item = item_param(&p)?;
    let (sort, cursor, limit) = paging(&p, true)?;
    page(&s, ("item_id", item), sort, cursor.as_ref(), limit).await
}

/// The caller's reviews, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/reviews/mine",
    operation_id = "list_my_reviews",
    security(("bearer" = [])),
    params(MineQuery),
    responses((status = 200, description = "A page of the caller's reviews.", body = ReviewPage)),
)]
#[tracing::instrument(skip(s, query), fields(user = %user.id))]
pub async fn mine(
    State(s): State<AppState>,
    user: AuthUser,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ReviewPage>, ApiError> {
    let p = params(query, &["cursor", "limit"])?;
    let (sort, cursor, limit) = paging(&p, false)?;
    page(&s, ("user_id", user.id), sort, cursor.as_ref(), limit).await
}

/// An item's rating summary.
///
/// Anyone may read it, without a token: the number of reviews, the mean rating (0 without
/// reviews) and how many give each number of stars. An item without reviews (or unknown)
/// has an empty summary.
#[utoipa::path(
    get,
    path = "/api/v1/reviews/summary",
    operation_id = "get_review_summary",
    params(SummaryQuery),
    responses((status = 200, description = "The item's ratings.", body = ReviewSummary)),
)]
#[tracing::instrument(skip(s, query))]
pub async fn summary(
    State(s): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ReviewSummary>, ApiError> {
    let p = params(query, &["item_id"])?;
    let item = item_param(&p)?;
    let rows = store::histogram(&s.db, item).await?;
    let mut counts = [0i64; 5];
    let (mut count, mut sum) = (0i64, 0i64);
    for (stars, slot) in (1..=5i16).zip(&mut counts) {
        let n = rows
            .iter()
            .find(|(r, _)| *r == stars)
            .map_or(0, |(_, n)| *n);
        *slot = n;
        count += n;
        sum += n * i64::from(stars);
    }
    let [one, two, three, four, five] = counts;
    Ok(Json(ReviewSummary {
        item_id: item,
        count,
        average: average(sum, count),
        histogram: Histogram {
            one,
            two,
            three,
            four,
            five,
        },
    }))
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
