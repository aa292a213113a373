//! `ApiJson<T>`: the JSON body extractor whose every rejection is a problem+json naming the
//! field (axum's `Json` answers in plain text and loses the field path).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::{ApiError, FieldError};

/// Reads a JSON body: 415 without a JSON content type, 413 over the body limit, 400 for
/// malformed JSON, 422 naming the field for a wrong, missing or unknown field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Deserialises `bytes`, mapping serde's error to the field it concerns. A string holding
/// NUL is a 422 naming it, whatever `T` is: PostgreSQL cannot store NUL in text, and no field
/// of ours means one.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let nul = nul_fields(bytes);
    if !nul.is_empty() {
        return Err(ApiError::Validation(nul));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("malformed JSON: {inner}"));
        }
        let message = strip_position(&inner.to_string());
        ApiError::Validation(vec![FieldError::new(field_of(&path, &message), message)])
    })
}

/// The paths (written as `serde_path_to_error` writes them: `lines[2].name`) of every string,
/// and of every object key, that holds NUL. JSON can only carry NUL as the escape `\u0000`
/// (raw control characters are malformed), so a body without that escape is not walked.
fn nul_fields(bytes: &[u8]) -> Vec<FieldError> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return Vec::new();
    }
    // Malformed JSON is left to `parse`, which answers it with a 400.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    walk_for_nul(&value, String::new(), &mut found);
    found
}

fn walk_for_nul(value: &serde_json::Value, path: String, found: &mut Vec<FieldError>) {
    use serde_json::Value;
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        // The body itself is named "" as `field_of` names it.
        Value::String(s) if s.contains('\0') => found.push(FieldError::new(path, NUL_MESSAGE)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_for_nul(item, format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    found.push(FieldError::new(
                        child(&key.replace('\0', "\\u0000")),
                        NUL_MESSAGE,
                    ));
                } else {
                    walk_for_nul(item, child(key), found);
                }
            }
        }
        _ => {}
    }
}

/// What a field holding NUL is told (the query-string parser says the same).
pub(crate) const NUL_MESSAGE: &str = "must not contain NUL characters";

/// serde reports a missing field at its parent's path; name the field itself. (An unknown
/// field's path already ends with its name.)
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (missing, path) {
        (Some(name), "." | "") => name.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, ".") => String::new(),
        (None, path) => path.to_owned(),
    }
}

/// serde_json appends ` at line 1 column 42`; clients need the field, not the column.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Signup {
        email: String,
        age: u8,
        address: Option<Address>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Address {
        city: String,
    }

    fn field(body: &str) -> (u16, String) {
        match parse::<Signup>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => (422, errors[0].field.clone()),
            Err(e) => (e.status().as_u16(), String::new()),
            Ok(_) => (200, String::new()),
        }
    }

    #[test]
    fn every_rejection_names_its_field() {
        let cases = [
            (r#"{"email":"a@b.c","age":3}"#, (200, "")),
            (r#"{"age":3}"#, (422, "email")),
            (r#"{"email":"a@b.c","age":3,"admin":true}"#, (422, "admin")),
            (r#"{"email":"a@b.c","age":300}"#, (422, "age")),
            (r#"{"email":1,"age":3}"#, (422, "email")),
            (
                r#"{"email":"a@b.c","age":3,"address":{"town":"x"}}"#,
                (422, "address.town"),
            ),
            (
                r#"{"email":"a@b.c","age":3,"address":{}}"#,
                (422, "address.city"),
            ),
            (r#"{"email":"a@\u0000b.c","age":3}"#, (422, "email")),
            (
                r#"{"email":"a@b.c","age":3,"address":{"city":"\u0000"}}"#,
                (422, "address.city"),
            ),
            (r#"{"email":"a@b.c\\u0000","age":3}"#, (200, "")),
            (r#"{"email":"a@b.c""#, (400, "")),
            ("not json", (400, "")),
        ];
        for (body, (status, name)) in cases {
            assert_eq!(field(body), (status, name.to_owned()), "{body}");
        }
    }

    #[test]
    fn nul_is_rejected_wherever_it_is() {
        let fields = |body: &str| -> Vec<String> {
            nul_fields(body.as_bytes())
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(
            fields(r#"{"lines":[{"name":"ok"},{"name":"a\u0000"}],"tags":["\u0000"]}"#),
            ["lines[1].name", "tags[0]"]
        );
        assert_eq!(fields(r#""\u0000""#), [""]);
        assert_eq!(fields(r#"{"a\u0000":1}"#), ["a\\u0000"]);
        assert!(
            fields(r#"{"name":"\\u0000"}"#).is_empty(),
            "an escaped backslash"
        );
        assert!(
            fields(r#"{"name":"\u0000"#).is_empty(),
            "malformed is parse's 400"
        );
    }
}
