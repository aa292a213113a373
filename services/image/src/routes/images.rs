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
use kommerce_kit::http::ApiError;
use serde_json::Value;
use uuid::Uuid;

use super::{params, path_id};
use crate::AppState;
use crate::domain::{Processed, Rejected, Variant, process};
use crate::store::{self, ImageRow};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "public, no-cache";

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

#[tracing::instrument(skip_all, fields(user = %user.id))]
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bytes = read_file(multipart, state.max_bytes).await?;
    let p = processed(&state, bytes).await?;
    let id = Uuid::now_v7();
    store_objects(&state, id, 1, &p).await?;
    match store::insert(&state.db, id, user.id, &p).await {
        Ok(row) => Ok((StatusCode::CREATED, Json(row.json()))),
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

#[tracing::instrument(skip(state, multipart), fields(user = %user.id))]
pub async fn replace(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(row.json()))
}

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
