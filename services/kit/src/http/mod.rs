//! HTTP conventions shared by every service: problem+json errors, the JSON body extractor,
//! health and metrics endpoints, and the layer stack (request id, trace, metrics, timeout,
//! body limit).

mod client;
mod error;
mod health;
mod json;
mod layers;
pub mod metrics;
mod serve;

pub use client::{ClientAddr, client_ip};
pub use error::{ApiError, FieldError, PROBLEM_JSON, Problem};
pub use health::{Readiness, health_routes};
pub use json::ApiJson;
pub use layers::{MAX_HEADERS_BYTES, MAX_URI_BYTES, service_router};
pub use serve::serve;

/// A path segment that must be an id: anything that is not a UUID names nothing, so it is a
/// 404 like any unknown id (never a 400 that would tell ids apart from other strings).
pub fn path_id(raw: &str, what: &'static str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}

/// A query string as name → value.
pub type QueryParams = std::collections::HashMap<String, String>;

/// The one query-string parser: a query string that cannot be read is a 400; a parameter
/// whose name or (decoded) value holds NUL is a 422 naming it, as in a JSON body
/// (PostgreSQL cannot store NUL in text).
pub fn query_params(
    q: Result<axum::extract::Query<QueryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<QueryParams, ApiError> {
    let params = q
        .map(|axum::extract::Query(m)| m)
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut nul: Vec<FieldError> = params
        .iter()
        .filter(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| FieldError::new(k.replace('\0', "\\u0000"), json::NUL_MESSAGE))
        .collect();
    if nul.is_empty() {
        Ok(params)
    } else {
        nul.sort_by(|a, b| a.field.cmp(&b.field));
        Err(ApiError::Validation(nul))
    }
}

/// [`query_params`] for a resource that takes only the `known` parameters: any other is a
/// 422 naming it.
pub fn known_query_params(
    q: Result<axum::extract::Query<QueryParams>, axum::extract::rejection::QueryRejection>,
    known: &[&str],
) -> Result<QueryParams, ApiError> {
    let params = query_params(q)?;
    let mut unknown: Vec<FieldError> = params
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| FieldError::new(k.clone(), "unknown parameter"))
        .collect();
    if unknown.is_empty() {
        Ok(params)
    } else {
        unknown.sort_by(|a, b| a.field.cmp(&b.field));
        Err(ApiError::Validation(unknown))
    }
}

/// An `Idempotency-Key` header: 1 to 255 visible ASCII characters. The one rule for every
/// endpoint that takes one: a key that is present but unusable (empty, too long, not visible
/// ASCII, or sent twice) is a 400 naming the header — never ignored, since ignoring it would
/// apply a retried request twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const HEADER: &'static str = "Idempotency-Key";
    pub const MAX_LEN: usize = 255;

    /// The key, if the request has one; 400 naming `Idempotency-Key` if it is unusable.
    pub fn optional(headers: &axum::http::HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(Self::HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(Self::bad("must be sent once"));
        }
        let bytes = value.as_bytes();
        if bytes.is_empty()
            || bytes.len() > Self::MAX_LEN
            || !bytes.iter().all(u8::is_ascii_graphic)
        {
            return Err(Self::bad(format!(
                "must be 1 to {} visible ASCII characters",
                Self::MAX_LEN
            )));
        }
        // Visible ASCII is UTF-8.
        Ok(Some(Self(String::from_utf8_lossy(bytes).into_owned())))
    }

    /// The key of a request that must have one; 400 naming `Idempotency-Key` otherwise.
    pub fn required(headers: &axum::http::HeaderMap) -> Result<Self, ApiError> {
        Self::optional(headers)?.ok_or_else(|| Self::bad("is required"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::BadHeader {
            header: Self::HEADER,
            message: message.into(),
        }
    }
}

/// `limit` from a query: `default` when absent, else 1..=`max` (422 naming `limit`).
pub fn limit_param(p: &QueryParams, default: i64, max: i64) -> Result<i64, ApiError> {
    match p.get("limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::field("limit", format!("must be from 1 to {max}"))),
    }
}

/// `cursor` from a query, for listings paged by (time-ordered) id: absent, or an id this
/// listing handed out (422 naming `cursor` otherwise).
pub fn id_cursor_param(p: &QueryParams) -> Result<Option<uuid::Uuid>, ApiError> {
    p.get("cursor")
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::field("cursor", "is not a cursor from this listing"))
        })
        .transpose()
}

/// The cursor of the page after `page`: its last id when the page is full, else `None`.
pub fn next_id_cursor<T>(
    page: &[T],
    limit: i64,
    id: impl Fn(&T) -> uuid::Uuid,
) -> Option<uuid::Uuid> {
    (i64::try_from(page.len()).ok() == Some(limit))
        .then(|| page.last().map(id))
        .flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::extract::Query;
    use axum::http::{HeaderMap, HeaderValue, Uri};

    use super::*;

    fn query(q: &str) -> Result<QueryParams, ApiError> {
        let uri: Uri = format!("/x?{q}").parse().unwrap();
        query_params(Query::try_from_uri(&uri))
    }

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn nul_in_a_query_string_is_a_422_naming_the_parameter() {
        assert_eq!(query("q=ab&limit=2").unwrap()["q"], "ab");
        assert_eq!(fields(query("q=a%00b&limit=2").unwrap_err()), ["q"]);
        assert_eq!(fields(query("q=%00&sort=%00").unwrap_err()), ["q", "sort"]);
        assert_eq!(fields(query("a%00=1").unwrap_err()), ["a\\u0000"]);
    }

    #[test]
    fn unknown_parameters_are_named() {
        let uri: Uri = "/x?limit=1&b=2&a=3".parse().unwrap();
        let e = known_query_params(Query::try_from_uri(&uri), &["limit"]).unwrap_err();
        assert_eq!(fields(e), ["a", "b"]);
        let uri: Uri = "/x?limit=%00".parse().unwrap();
        let e = known_query_params(Query::try_from_uri(&uri), &["limit"]).unwrap_err();
        assert_eq!(fields(e), ["limit"], "the NUL rule applies too");
    }

    fn key(raw: Option<&[u8]>) -> Result<Option<IdempotencyKey>, ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(raw) = raw {
            headers.insert("idempotency-key", HeaderValue::from_bytes(raw).unwrap());
        }
        IdempotencyKey::optional(&headers)
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_or_a_400_naming_the_header() {
        assert_eq!(key(None).unwrap(), None);
        assert_eq!(
            key(Some(b"order-42")).unwrap().unwrap().as_str(),
            "order-42"
        );
        assert!(key(Some("x".repeat(255).as_bytes())).unwrap().is_some());
        for bad in [
            &b""[..],
            b"has space",
            b"\xff",
            "caf\u{e9}".as_bytes(),
            "x".repeat(256).as_bytes(),
        ] {
            match key(Some(bad)) {
                Err(ApiError::BadHeader { header, .. }) => assert_eq!(header, "Idempotency-Key"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(matches!(
            IdempotencyKey::required(&HeaderMap::new()),
            Err(ApiError::BadHeader { .. })
        ));
        let mut twice = HeaderMap::new();
        twice.append("idempotency-key", HeaderValue::from_static("a"));
        twice.append("idempotency-key", HeaderValue::from_static("b"));
        assert!(IdempotencyKey::optional(&twice).is_err());
    }
}
