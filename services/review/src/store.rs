//! Reviews and rating totals in PostgreSQL (runtime-checked queries, docs/adr/0003).

use kommerce_kit::messaging::{Envelope, publish_in_tx};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::listing::{Cursor, Sort};
use crate::domain::review::NewReview;
use crate::events::RatingChanged;

/// A review, as everyone sees it.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Review {
    pub id: Uuid,
    pub item_id: Uuid,
    /// The author.
    pub user_id: Uuid,
    /// Stars, 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i16,
    /// One line, possibly empty.
    #[schema(max_length = 200)]
    pub title: String,
    #[schema(min_length = 1, max_length = 5000)]
    pub body: String,
    /// The review's images (`GET /api/v1/images/{id}`), in the order shown.
    #[schema(max_items = 10)]
    pub image_ids: Vec<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Equal to `created_at` until the review is edited.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Review {
    pub fn cursor(&self, sort: Sort) -> Cursor {
        Cursor {
            sort,
            rating: self.rating,
            at: self.created_at,
            id: self.id,
        }
    }
}

const COLUMNS: &str =
    "id, item_id, user_id, rating, title, body, image_ids, created_at, updated_at";

pub async fn exists_for(db: &PgPool, user: Uuid, item: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM reviews WHERE user_id = $1 AND item_id = $2)")
        .bind(user)
        .bind(item)
        .fetch_one(db)
        .await
}

pub async fn insert(
    tx: &mut PgConnection,
    id: Uuid,
    user: Uuid,
    r: &NewReview,
) -> Result<Review, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO reviews (id, item_id, user_id, rating, title, body, image_ids) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(r.item_id)
    .bind(user)
    .bind(r.rating.get())
    .bind(&r.title)
    .bind(&r.body)
    .bind(&r.image_ids)
    .fetch_one(&mut *tx)
    .await
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<Review>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM reviews WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<Review>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
}

pub async fn update(
    tx: &mut PgConnection,
    id: Uuid,
    rating: i16,
    title: &str,
    body: &str,
    image_ids: &[Uuid],
) -> Result<Review, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE reviews SET rating = $2, title = $3, body = $4, image_ids = $5, \
         updated_at = clock_timestamp() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(rating)
    .bind(title)
    .bind(body)
    .bind(image_ids)
    .fetch_one(&mut *tx)
    .await
}

pub async fn delete(tx: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reviews WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Adds `count`/`sum` to the item's totals, bumps its sequence number and publishes the new
/// totals through the outbox — all in the caller's transaction. The row lock the UPDATE
/// takes orders concurrent changes of one item, so `seq` follows commit order.
pub async fn change_rating(
    tx: &mut PgConnection,
    topic: &str,
    item: Uuid,
    count: i64,
    sum: i64,
) -> Result<RatingChanged, sqlx::Error> {
    // The proposed row of an upsert must pass the CHECKs itself, so a negative delta cannot
    // ride on INSERT … ON CONFLICT: make sure the row exists, then change it.
    sqlx::query(
        "INSERT INTO item_ratings (item_id, rating_count, rating_sum, seq) VALUES ($1, 0, 0, 0) \
         ON CONFLICT (item_id) DO NOTHING",
    )
    .bind(item)
    .execute(&mut *tx)
    .await?;
    let (rating_count, rating_sum, seq): (i64, i64, i64) = sqlx::query_as(
        "UPDATE item_ratings SET rating_count = rating_count + $2, rating_sum = rating_sum + $3, \
         seq = seq + 1 WHERE item_id = $1 RETURNING rating_count, rating_sum, seq",
    )
    .bind(item)
    .bind(count)
    .bind(sum)
    .fetch_one(&mut *tx)
    .await?;
    let event = RatingChanged {
        item_id: item,
        rating_count,
        rating_sum,
        seq,
    };
    let envelope = Envelope::new(&event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    publish_in_tx(tx, topic, &envelope).await?;
    Ok(event)
}

/// One page of a listing: `filter` is `item_id` or `user_id`.
pub async fn page(
    db: &PgPool,
    filter: (&str, Uuid),
    sort: Sort,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<Review>, sqlx::Error> {
    let (column, value) = filter;
    let column = if column == "user_id" {
        "user_id"
    } else {
        "item_id"
    };
    let keyset = if after.is_some() {
        format!(" AND {}", sort.after("$3", "$4", "$5"))
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM reviews WHERE {column} = $1{keyset} ORDER BY {} LIMIT $2",
        sort.order_by()
    );
    let mut q = sqlx::query_as(&sql).bind(value).bind(limit);
    if let Some(c) = after {
        q = q.bind(c.rating).bind(c.at).bind(c.id);
    }
    q.fetch_all(db).await
}

/// `(rating, count)` for each rating the item has.
pub async fn histogram(db: &PgPool, item: Uuid) -> Result<Vec<(i16, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT rating, count(*) FROM reviews WHERE item_id = $1 GROUP BY rating")
        .bind(item)
        .fetch_all(db)
        .await
}
