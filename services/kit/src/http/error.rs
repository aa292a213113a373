//! RFC 9457 problem details. Every error a client sees is one of these; internal causes are
//! logged, never returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field's problem: `field` is the JSON path (`email`, `lines[2].qty`) or the query
/// parameter's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem whose `type` is `https://kommerce.dev/problems/<slug>`.
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Self {
        Self {
            kind: format!("https://kommerce.dev/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
        }
    }

    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The generic problem for a bare status (used for errors raised by layers).
    pub fn for_status(status: StatusCode) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        Self::new(status, &slug, title)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// What a handler can fail with. Each variant maps to exactly one status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read at all (malformed JSON, bad header).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 400: a header is present but unusable (or required and absent); the body names it.
    #[error("bad header {header}: {message}")]
    BadHeader {
        header: &'static str,
        message: String,
    },
    /// 401: no, invalid, expired or revoked credentials. The body never says which.
    #[error("unauthorized")]
    Unauthorized,
    /// 402: the payment method cannot cover the amount; nothing was charged.
    #[error("payment required: {0}")]
    PaymentRequired(String),
    /// 403: authenticated but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404: the resource does not exist *for this caller* (someone else's is also 404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the request conflicts with the current state (duplicate, limit reached).
    #[error("conflict: {detail}")]
    Conflict { slug: &'static str, detail: String },
    /// 413
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 422: the request is well-formed but its fields are not acceptable.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// 429: too many attempts (login, signup); try again after `retry_after` seconds.
    #[error("too many requests: {detail}")]
    TooManyRequests { detail: String, retry_after: u32 },
    /// 503: a dependency is down; nothing was changed. `retry_after` in seconds.
    #[error("service unavailable: {detail}")]
    Unavailable { detail: String, retry_after: u32 },
    /// 500: logged with its cause chain, returned as a bare "internal error".
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// 404, 409, 422 naming the field, or the database's 500/503.
impl From<crate::db::StoreError> for ApiError {
    fn from(e: crate::db::StoreError) -> Self {
        use crate::db::StoreError;
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict { slug, detail } => Self::Conflict { slug, detail },
            StoreError::Invalid { field, message } => Self::field(field, message),
            StoreError::Db(e) => e.into(),
        }
    }
}

impl ApiError {
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(e.into())
    }

    /// 503 with `Retry-After: 1`: a dependency is down and nothing was changed.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable {
            detail: detail.into(),
            retry_after: 1,
        }
    }

    /// 503: the database could not be reached or went away mid-request ([`database_unreachable`]).
    pub fn database_unreachable() -> Self {
        Self::unavailable(
            "the database is unreachable; try again (with the same Idempotency-Key where the request takes one)",
        )
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            slug,
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::BadHeader { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        match self {
            Self::BadRequest(d) => Problem::new(status, "bad-request", "Bad request").detail(d),
            Self::BadHeader { header, message } => Problem {
                errors: vec![FieldError::new(*header, message.clone())],
                ..Problem::new(status, "bad-request", "Bad request")
                    .detail(format!("{header}: {message}"))
            },
            Self::Unauthorized => Problem::new(status, "unauthorized", "Unauthorized")
                .detail("missing, invalid, expired or revoked credentials"),
            Self::PaymentRequired(d) => {
                Problem::new(status, "payment-required", "Payment required").detail(d)
            }
            Self::Forbidden(d) => Problem::new(status, "forbidden", "Forbidden").detail(d),
            Self::NotFound(what) => {
                Problem::new(status, "not-found", "Not found").detail(format!("{what} not found"))
            }
            Self::Conflict { slug, detail } => {
                Problem::new(status, slug, "Conflict").detail(detail)
            }
            Self::PayloadTooLarge => Problem::for_status(status),
            Self::UnsupportedMediaType(d) => {
                Problem::new(status, "unsupported-media-type", "Unsupported media type").detail(d)
            }
            Self::Validation(errors) => Problem {
                errors: errors.clone(),
                ..Problem::new(status, "validation", "Invalid request").detail(
                    errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            },
            Self::TooManyRequests { detail, .. } => {
                Problem::new(status, "too-many-requests", "Too many requests").detail(detail)
            }
            Self::Unavailable { detail, .. } => {
                Problem::new(status, "unavailable", "Service unavailable").detail(detail)
            }
            Self::Internal(_) => Problem::new(status, "internal", "Internal error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            // The request span carries method, route and request id.
            tracing::error!(error = %ErrorChain(cause.as_ref()), "request failed");
        }
        let mut response = self.problem().into_response();
        if let Self::Unavailable { retry_after, .. } | Self::TooManyRequests { retry_after, .. } =
            self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::retryable_db(&e).unwrap_or_else(|| Self::internal(e))
    }
}

impl ApiError {
    /// What a database error several requests share (a batch written for all of them) means
    /// to each: the same as [`From<sqlx::Error>`], the cause of a 500 kept as its text.
    pub fn from_shared_db(e: &sqlx::Error) -> Self {
        Self::retryable_db(e).unwrap_or_else(|| Self::internal(ErrorChain(e).to_string()))
    }

    /// A 503 for a database error a client should retry (busy, unreachable, a transaction the
    /// database gave up on); `None` for one that is a 500.
    fn retryable_db(e: &sqlx::Error) -> Option<Self> {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            Some(Self::Unavailable {
                detail: "database busy".into(),
                retry_after: 1,
            })
        } else if database_asks_to_retry(e) {
            tracing::warn!(error = %ErrorChain(e), "the database asked to retry");
            Some(Self::unavailable(
                "the database asked to try again (a conflict with another request); try again",
            ))
        } else if database_unreachable(e) {
            tracing::warn!(error = %ErrorChain(e), "database unreachable");
            Some(Self::database_unreachable())
        } else {
            None
        }
    }
}

/// Whether the database gave up on a transaction that a retry can complete: a deadlock it broke
/// (40P01) or a serialization failure (40001). Nothing of it was written.
fn database_asks_to_retry(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
}

/// Whether a database error says the database could not be reached or went away (a restart,
/// a failover, a cut connection) rather than that the request was wrong: a client should try
/// again, so it is a 503, not a 500. SQLSTATE class 08 (connection exception), 57P01–57P03
/// (shut down, crashed, starting) and 53300 (too many connections).
fn database_unreachable(e: &sqlx::Error) -> bool {
    match e {
        // Io: a cut connection. Tls and Protocol: a connection attempt that met a server
        // shutting down or starting up. PoolClosed, WorkerCrashed: the pool is going away.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Displays an error with its `source()` chain: `a: b: c`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(e: ApiError) -> (StatusCode, String, serde_json::Value) {
        let r = e.into_response();
        let status = r.status();
        let ct = r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, ct, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn validation_names_every_field() {
        let (status, ct, v) = body(ApiError::Validation(vec![
            FieldError::new("email", "not an email address"),
            FieldError::new("phone", "must be 7 to 15 digits"),
        ]))
        .await;
        assert_eq!(status, 422);
        assert_eq!(ct, PROBLEM_JSON);
        assert_eq!(v["status"], 422);
        assert_eq!(v["type"], "https://kommerce.dev/problems/validation");
        assert_eq!(v["errors"][0]["field"], "email");
        assert_eq!(v["errors"][1]["field"], "phone");
    }

    #[tokio::test]
    async fn a_database_that_went_away_is_a_503_to_retry_not_a_500() {
        let cut = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        for e in [cut, sqlx::Error::PoolClosed] {
            let r = ApiError::from(e).into_response();
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        }
        let (status, _, v) = body(sqlx::Error::RowNotFound.into()).await;
        assert_eq!(
            (status.as_u16(), &v["title"]),
            (500, &serde_json::json!("Internal error"))
        );
    }

    #[tokio::test]
    async fn a_store_refusal_becomes_its_status() {
        use crate::db::StoreError;
        let (status, _, v) = body(StoreError::NotFound("address").into()).await;
        assert_eq!(
            (status.as_u16(), v["detail"].as_str()),
            (404, Some("address not found"))
        );
        let (status, _, v) =
            body(StoreError::conflict("email-taken", "an account exists").into()).await;
        assert_eq!(status, 409);
        assert_eq!(v["type"], "https://kommerce.dev/problems/email-taken");
        let (status, _, v) =
            body(StoreError::invalid("parent_id", "no such category").into()).await;
        assert_eq!(status, 422);
        assert_eq!(v["errors"][0]["field"], "parent_id");
        let (status, _, _) = body(StoreError::Db(sqlx::Error::PoolTimedOut).into()).await;
        assert_eq!(status, 503);
    }

    #[tokio::test]
    async fn a_bad_header_is_a_400_naming_it() {
        let (status, ct, v) = body(ApiError::BadHeader {
            header: "Idempotency-Key",
            message: "must be 1 to 255 visible ASCII characters".into(),
        })
        .await;
        assert_eq!(status, 400);
        assert_eq!(ct, PROBLEM_JSON);
        assert_eq!(v["errors"][0]["field"], "Idempotency-Key");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let (status, _, v) = body(ApiError::internal("password=hunter2 leaked?")).await;
        assert_eq!(status, 500);
        assert!(!v.to_string().contains("hunter2"));
        assert_eq!(v["title"], "Internal error");
    }
}
