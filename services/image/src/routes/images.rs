//! `/api/v1/images`: upload, read (with ETag and immutable versioned URLs), replace, delete.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, Problem};
use kommerce_kit::openapi::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{params, path_id};
use crate::AppState;
use crate::domain::{Processed, Rejected, Variant, process};
use crate::store::{self, Image, ImageRow};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "public, no-cache";

/// A `multipart/form-data` upload: exactly one part, named `file`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the body; the handler reads it as a stream
pub struct UploadForm {
    /// A JPEG, PNG, WebP or GIF (judged by its bytes; the part's file name and Content-Type
    /// are ignored) of at most `images.max_bytes` (5 MiB by default) and `images.max_pixels`
    /// pixels (40 million by default).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// The query of `GET /api/v1/images/{id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it with the kit's parser
pub struct GetQuery {
    /// Which rendition (default `original`).
    #[param(inline, nullable = false)]
    pub variant: Option<Variant>,
    /// The version the URL was made for (`url`, `thumb_url`): an immutable, cacheable answer.
    /// Any other version than the current one is a 404; without it the answer must be
    /// revalidated.
    #[param(minimum = 1, nullable = false)]
    pub v: Option<i32>,
}

/// The conditional header of `GET /api/v1/images/{id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the header; the handler reads the header map
pub struct IfNoneMatchHeader {
    /// ETags already held (comma-separated, weak or strong), or `*`: a match is a 304 without
    /// the bytes.
    #[param(rename = "If-None-Match", nullable = false)]
    pub if_none_match: Option<String>,
}

/// Reads the one `file` part of a multipart body, at most `max` bytes. A larger file is read to
/// its end (so the client sees the answer rather than a reset connection) and refused with 413.
async fn read_file(
    multipart: Result<Multipart, MultipartRejection>,
    max: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut multipart = multipart.map_err(|_| {
        ApiError::UnsupportedMediaType("expected multipart/form-data with one file part".into())
    })?;
    let read_err = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(e.body_text())
        }
    };
    let mut file: Option<Vec<u8>> = None;
    let mut too_large = false;
    while let Some(mut field) = multipart.next_field().await.map_err(read_err)? {
        if field.name() != Some("file") {
            let name = field.name().unwrap_or("").to_owned();
            return Err(ApiError::field(
                if name.is_empty() { "file".into() } else { name },
                "unknown part; send exactly one part named file",
            ));
        }
        if file.is_some() {
            return Err(ApiError::field("file", "exactly one file per request"));
        }
        // The part's file name and Content-Type are ignored: the bytes say what they are.
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(read_err)? {
            if too_large || bytes.len() + chunk.len() > max {
                too_large = true;
                bytes = Vec::new();
                continue;
            }
            bytes.extend_from_slice(&chunk);
        }
        file = Some(bytes);
    }
    if too_large {
        return Err(ApiError::PayloadTooLarge);
    }
    match file {
        Some(b) if !b.is_empty() => Ok(b),
        Some(_) => Err(ApiError::field("file", "must not be empty")),
        None => Err(ApiError::field("file", "required")),
    }
}

/// Decodes and re-encodes on a blocking thread (CPU-bound), a bounded number at a time.
async fn processed(state: &AppState, bytes: Vec<u8>) -> Result<Processed, ApiError> {
    let limits = state.limits;
    let _permit = state.decoding.acquire().await.map_err(ApiError::internal)?;
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || process(&bytes, &limits))
        .await
        .map_err(ApiError::internal)?;
    metrics::histogram!("image_process_seconds").record(started.elapsed().as_secs_f64());
    result.map_err(|e| match e {
        Rejected::UnsupportedType => ApiError::UnsupportedMediaType(e.to_string()),
        Rejected::TooManyPixels { .. } | Rejected::Undecodable(_) => {
            ApiError::field("file", e.to_string())
        }
    })
}

/// Writes both variants of `version`.
async fn store_objects(
    state: &AppState,
    id: Uuid,
    version: i32,
    p: &Processed,
) -> Result<(), ApiError> {
    let put = |variant, bytes: &Vec<u8>| state.blobs.put(id, version, variant, bytes.clone());
    let (a, b) = tokio::join!(
        put(Variant::Original, &p.original.bytes),
        put(Variant::Thumb, &p.thumb.bytes)
    );
    if let Err(e) = a.and(b) {
        state.blobs.forget_version(id, version).await;
        return Err(ApiError::internal(e));
    }
    Ok(())
}

/// Uploads an image.
///
/// Any signed-in user may. The bytes are sniffed, fully decoded within the pixel limit and
/// re-encoded in the same format without metadata (EXIF orientation applied), with a
/// thumbnail whose longest side is `images.thumb_side` (320 by default). The upload belongs
/// to nothing until an item or a review attaches it; an unattached one is deleted after
/// `images.unattached_max_age_secs` (a day by default).
#[utoipa::path(
    post,
    path = "/api/v1/images",
    operation_id = "upload_image",
    security(("bearer" = [])),
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored.", body = Image),
        (status = 413, description = "The file is larger than `images.max_bytes`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `multipart/form-data`, or the file is not a JPEG, PNG, WebP or GIF.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No `file` part, an empty one, a second one or another part; more pixels than `images.max_pixels`; or an image that cannot be decoded. `errors` names the part.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.id))]
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Image>), ApiError> {
    let bytes = read_file(multipart, state.max_bytes).await?;
    let p = processed(&state, bytes).await?;
    let id = Uuid::now_v7();
    store_objects(&state, id, 1, &p).await?;
    match store::insert(&state.db, id, user.id, &p).await {
        Ok(row) => Ok((StatusCode::CREATED, Json(row.view()))),
        Err(e) => {
            state.blobs.forget_version(id, 1).await;
            Err(e.into())
        }
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 says for this header).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == bare)
}

/// An image's bytes.
///
/// Anyone may read them, without a token, in the stored format. A versioned URL (`?v=`, as
/// in `url` and `thumb_url`) is immutable and cached for a year; a bare one must be
/// revalidated. Each rendition has its own strong ETag; `If-None-Match` answers 304 when it
/// matches.
#[utoipa::path(
    get,
    path = "/api/v1/images/{id}",
    operation_id = "get_image",
    params(("id" = Uuid, Path, description = "The image."), GetQuery, IfNoneMatchHeader),
    responses(
        (status = 200, description = "The bytes of the rendition.",
            content(("image/jpeg"), ("image/png"), ("image/webp"), ("image/gif")),
            headers(
                ("ETag" = String, description = "The rendition's strong ETag."),
                ("Cache-Control" = String, description = "`public, max-age=31536000, immutable` with `v`, else `public, no-cache`."),
                ("X-Content-Type-Options" = String, description = "`nosniff`."),
            )),
        (status = 304, description = "`If-None-Match` names the rendition's ETag: no body.",
            headers(
                ("ETag" = String, description = "The rendition's strong ETag."),
                ("Cache-Control" = String, description = "As for a 200."),
            )),
    ),
)]
#[tracing::instrument(skip(state, query, headers))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "image")?;
    let q = params(query, &["variant", "v"])?;
    let variant = match q.get("variant") {
        None => Variant::Original,
        Some(v) => Variant::parse(v).map_err(|m| ApiError::field("variant", m))?,
    };
    let version = match q.get("v") {
        None => None,
        Some(v) => Some(
            v.parse::<i32>()
                .map_err(|_| ApiError::field("v", "must be a version number"))?,
        ),
    };
    let row = store::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    // An old version's URL names bytes that no longer exist.
    if version.is_some_and(|v| v != row.version) {
        return Err(ApiError::NotFound("image version"));
    }
    let cache = if version.is_some() {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let etag = row.etag(variant).to_owned();
    let mut response = if matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let bytes = state
            .blobs
            .get(id, row.version, variant)
            .await
            .map_err(ApiError::internal)?
            .ok_or(ApiError::NotFound("image"))?;
        let mut r = Body::from(bytes).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&row.content_type).map_err(ApiError::internal)?,
        );
        r.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        r
    };
    let h = response.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(ApiError::internal)?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}

/// The row, if `user` may change it: 404 when missing, 403 when someone else's.
fn owned(row: Option<ImageRow>, user: &AuthUser, admin_may: bool) -> Result<ImageRow, ApiError> {
    let row = row.ok_or(ApiError::NotFound("image"))?;
    if row.owner_id == user.id || (admin_may && user.is_admin()) {
        Ok(row)
    } else {
        Err(ApiError::Forbidden(
            "only the uploader may change this image".into(),
        ))
    }
}

/// Replaces an image's bytes.
///
/// Only its uploader may (an admin may not). The upload is processed as a new one and
/// becomes the next version: new URLs and ETags, the old version's bytes are deleted, and
/// its attachment stays.
#[utoipa::path(
    put,
    path = "/api/v1/images/{id}",
    operation_id = "replace_image",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The image.")),
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The new version.", body = Image),
        (status = 403, description = "The caller is not the uploader.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than `images.max_bytes`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `multipart/form-data`, or the file is not a JPEG, PNG, WebP or GIF.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No `file` part, an empty one, a second one or another part; more pixels than `images.max_pixels`; or an image that cannot be decoded. `errors` names the part.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip(state, multipart), fields(user = %user.id))]
pub async fn replace(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Image>, ApiError> {
    let id = path_id(&id, "image")?;
    // Refuse early, before reading and decoding the upload.
    owned(store::get(&state.db, id).await?, &user, false)?;
    let bytes = read_file(multipart, state.max_bytes).await?;
    let p = processed(&state, bytes).await?;
    let mut tx = state.db.begin().await?;
    let old = owned(store::lock(&mut tx, id).await?, &user, false)?;
    let version = old.version + 1;
    store_objects(&state, id, version, &p).await?;
    let row = match store::replace(&mut tx, id, version, &p).await {
        Ok(row) => row,
        Err(e) => {
            state.blobs.forget_version(id, version).await;
            return Err(e.into());
        }
    };
    if let Err(e) = tx.commit().await {
        state.blobs.forget_version(id, version).await;
        return Err(e.into());
    }
    state.blobs.forget_version(id, old.version).await;
    Ok(Json(row.view()))
}

/// Deletes an image.
///
/// Its uploader or an admin may; both renditions go with it.
#[utoipa::path(
    delete,
    path = "/api/v1/images/{id}",
    operation_id = "delete_image",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The image.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is neither the uploader nor an admin.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip(state), fields(user = %user.id))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "image")?;
    owned(store::get(&state.db, id).await?, &user, true)?;
    for (id, version) in store::delete_ids(&state.db, &[id]).await? {
        state.blobs.forget_version(id, version).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
