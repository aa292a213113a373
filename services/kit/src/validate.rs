//! Collecting field problems while parsing a request into domain values, so that one response
//! names every bad field at once (parse, don't validate: the domain types' parsers do the
//! checking, this only gathers their verdicts).

use crate::http::{ApiError, FieldError};

/// Gathers per-field parse results.
///
/// ```
/// # use kommerce_kit::validate::{Fields, text};
/// let mut f = Fields::new();
/// let name = f.check("name", text("  Ada ", 1, 100));
/// let city = f.check("city", text("", 1, 100));
/// let err = f.finish().unwrap_err();
/// assert_eq!(name.as_deref(), Some("Ada"));
/// assert!(city.is_none());
/// assert_eq!(err.status(), 422);
/// ```
#[derive(Debug, Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// The parsed value, or `None` with the problem recorded under `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// Like [`Fields::check`] for an optional input: `None` stays `Some(None)`.
    pub fn check_opt<T, I>(
        &mut self,
        field: &str,
        input: Option<I>,
        parse: impl FnOnce(I) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match input {
            None => Some(None),
            Some(i) => self.check(field, parse(i)).map(Some),
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `Ok(())` when every field parsed, else 422 naming each bad field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Trimmed text of `min..=max` characters without control characters.
pub fn text(input: &str, min: usize, max: usize) -> Result<String, String> {
    let t = input.trim();
    let len = t.chars().count();
    if len < min {
        return Err(if min == 1 {
            "must not be empty".into()
        } else {
            format!("must be at least {min} characters")
        });
    }
    if len > max {
        return Err(format!("must be at most {max} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(t.to_owned())
}

/// Optional text: absent, or blank (cleared), or `1..=max` characters.
pub fn optional_text(input: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match input.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => text(t, 1, max).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert_eq!(text(" a ", 1, 3), Ok("a".into()));
        assert!(text("   ", 1, 3).is_err());
        assert!(text("abcd", 1, 3).is_err());
        assert!(text("a\u{0}b", 1, 3).is_err());
        assert_eq!(
            text("ééé", 1, 3),
            Ok("ééé".into()),
            "counts characters, not bytes"
        );
        assert_eq!(optional_text(Some("  "), 3), Ok(None));
        assert_eq!(optional_text(None, 3), Ok(None));
        assert!(optional_text(Some("abcd"), 3).is_err());
    }

    #[test]
    fn finish_reports_every_field() {
        let mut f = Fields::new();
        f.check("a", text("", 1, 2));
        f.check("b", text("toolong", 1, 2));
        f.check("c", text("ok", 1, 2));
        match f.finish() {
            Err(ApiError::Validation(e)) => {
                assert_eq!(
                    e.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                    ["a", "b"]
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
