//! Image metadata in PostgreSQL (runtime-checked queries, docs/adr/0003).

use kommerce_contracts::image::OwnerKind;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Processed, Variant};

#[derive(Debug, Clone, FromRow)]
pub struct ImageRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub version: i32,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    pub etag: String,
    pub thumb_width: i32,
    pub thumb_height: i32,
    pub thumb_bytes: i64,
    pub thumb_etag: String,
    pub attached_kind: Option<String>,
    pub attached_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

impl ImageRow {
    pub fn etag(&self, variant: Variant) -> &str {
        match variant {
            Variant::Original => &self.etag,
            Variant::Thumb => &self.thumb_etag,
        }
    }

    /// The image as the API shows it.
    pub fn view(&self) -> Image {
        let base = format!("/api/v1/images/{}", self.id);
        Image {
            id: self.id,
            owner_id: self.owner_id,
            version: self.version,
            content_type: self.content_type.clone(),
            width: self.width,
            height: self.height,
            bytes: self.bytes,
            url: format!("{base}?v={}", self.version),
            thumb_url: format!("{base}?variant=thumb&v={}", self.version),
            thumb_width: self.thumb_width,
            thumb_height: self.thumb_height,
            // Both or neither (`images_attachment_whole`).
            attached_to: match (&self.attached_kind, self.attached_id) {
                (Some(kind), Some(id)) => Some(Attachment {
                    kind: kind.clone(),
                    id,
                }),
                _ => None,
            },
            created_at: self.created_at,
        }
    }
}

/// An uploaded image: its current version's metadata and URLs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Image {
    pub id: Uuid,
    /// The uploader.
    pub owner_id: Uuid,
    /// 1 on upload, one more with every replacement.
    #[schema(minimum = 1)]
    pub version: i32,
    /// The stored format, as sniffed from the uploaded bytes (both variants keep it).
    #[schema(pattern = "^image/(jpeg|png|webp|gif)$")]
    pub content_type: String,
    #[schema(minimum = 1)]
    pub width: i32,
    #[schema(minimum = 1)]
    pub height: i32,
    /// The size of the stored original.
    #[schema(minimum = 1)]
    pub bytes: i64,
    /// The original of this version, immutable (`?v=`): cache it forever.
    pub url: String,
    /// The thumbnail of this version, immutable.
    pub thumb_url: String,
    #[schema(minimum = 1)]
    pub thumb_width: i32,
    #[schema(minimum = 1)]
    pub thumb_height: i32,
    /// What the image belongs to; `null` while unattached (the sweeper deletes unattached
    /// images after `images.unattached_max_age_secs`).
    pub attached_to: Option<Attachment>,
    /// When it was uploaded, or last detached.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The item or review an image belongs to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ImageAttachment)]
pub struct Attachment {
    #[schema(value_type = OwnerKind)]
    pub kind: String,
    pub id: Uuid,
}

const COLUMNS: &str = "id, owner_id, version, content_type, width, height, bytes, etag, \
     thumb_width, thumb_height, thumb_bytes, thumb_etag, attached_kind, attached_id, created_at";

fn dims(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn len(v: &[u8]) -> i64 {
    i64::try_from(v.len()).unwrap_or(i64::MAX)
}

pub async fn insert(
    db: &PgPool,
    id: Uuid,
    owner: Uuid,
    p: &Processed,
) -> Result<ImageRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO images (id, owner_id, content_type, width, height, bytes, etag, \
         thumb_width, thumb_height, thumb_bytes, thumb_etag) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .bind(p.format.content_type())
    .bind(dims(p.original.width))
    .bind(dims(p.original.height))
    .bind(len(&p.original.bytes))
    .bind(&p.original.etag)
    .bind(dims(p.thumb.width))
    .bind(dims(p.thumb.height))
    .bind(len(&p.thumb.bytes))
    .bind(&p.thumb.etag)
    .fetch_one(db)
    .await
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM images WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM images WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
}

/// Points the row at a new version's objects.
pub async fn replace(
    tx: &mut PgConnection,
    id: Uuid,
    version: i32,
    p: &Processed,
) -> Result<ImageRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE images SET version = $2, content_type = $3, width = $4, height = $5, bytes = $6, \
         etag = $7, thumb_width = $8, thumb_height = $9, thumb_bytes = $10, thumb_etag = $11, \
         updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(version)
    .bind(p.format.content_type())
    .bind(dims(p.original.width))
    .bind(dims(p.original.height))
    .bind(len(&p.original.bytes))
    .bind(&p.original.etag)
    .bind(dims(p.thumb.width))
    .bind(dims(p.thumb.height))
    .bind(len(&p.thumb.bytes))
    .bind(&p.thumb.etag)
    .fetch_one(&mut *tx)
    .await
}

pub async fn attach(
    tx: &mut PgConnection,
    id: Uuid,
    kind: &str,
    owner: Uuid,
) -> Result<ImageRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE images SET attached_kind = $2, attached_id = $3, attached_at = now(), \
         updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(kind)
    .bind(owner)
    .fetch_one(&mut *tx)
    .await
}

/// Makes an image unattached again if it is attached to `kind`/`owner` (idempotent).
pub async fn detach(db: &PgPool, id: Uuid, kind: &str, owner: Uuid) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE images SET attached_kind = NULL, attached_id = NULL, attached_at = NULL, \
         created_at = now(), updated_at = now() \
         WHERE id = $1 AND attached_kind = $2 AND attached_id = $3",
    )
    .bind(id)
    .bind(kind)
    .bind(owner)
    .execute(db)
    .await?
    .rows_affected())
}

/// Deletes rows, returning `(id, version)` of each deleted one (for its objects).
pub async fn delete_ids(db: &PgPool, ids: &[Uuid]) -> Result<Vec<(Uuid, i32)>, sqlx::Error> {
    sqlx::query_as("DELETE FROM images WHERE id = ANY($1) RETURNING id, version")
        .bind(ids)
        .fetch_all(db)
        .await
}

pub async fn delete_attached_to(
    db: &PgPool,
    kind: &str,
    owner: Uuid,
) -> Result<Vec<(Uuid, i32)>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM images WHERE attached_kind = $1 AND attached_id = $2 RETURNING id, version",
    )
    .bind(kind)
    .bind(owner)
    .fetch_all(db)
    .await
}

/// Deletes up to `limit` unattached images created more than `max_age_secs` ago.
pub async fn delete_stale_unattached(
    db: &PgPool,
    max_age_secs: i64,
    limit: i64,
) -> Result<Vec<(Uuid, i32)>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM images WHERE id IN (SELECT id FROM images WHERE attached_id IS NULL \
         AND created_at < now() - $1::bigint * interval '1 second' ORDER BY created_at LIMIT $2 \
         FOR UPDATE SKIP LOCKED) RETURNING id, version",
    )
    .bind(max_age_secs)
    .bind(limit)
    .fetch_all(db)
    .await
}
