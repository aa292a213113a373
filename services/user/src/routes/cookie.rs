//! The refresh token of a browser session, kept in a cookie the page's scripts cannot read.
//!
//! A client asks for it with `Kommerce-Session: cookie` on login, refresh and logout; other
//! clients keep the JSON flow (the refresh token in the body both ways). The cookie is
//! `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it), scoped
//! to `/api/v1/auth` (no other request carries it) and `Secure` when the request reached the
//! edge over HTTPS (`X-Forwarded-Proto: https`, as an Ingress says). A refresh by cookie also
//! needs the header, which a cross-site form cannot send and a cross-origin script cannot
//! send without a CORS preflight no service answers. ADR 0024.

use axum::http::{HeaderMap, HeaderValue, header};

/// The header that selects the cookie flow, and its one value.
pub const MODE_HEADER: &str = "kommerce-session";
pub const MODE_COOKIE: &str = "cookie";
/// The cookie's name and path.
pub const NAME: &str = "kommerce_refresh";
pub const PATH: &str = "/api/v1/auth";

/// Whether the request asks for the cookie flow.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(MODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(MODE_COOKIE))
}

/// Whether the client reached the edge over HTTPS.
fn https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The refresh token the request's cookies carry, if any (the first of that name).
pub fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == NAME)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` holding `refresh_token` for `max_age_secs`.
pub fn set(headers: &HeaderMap, refresh_token: &str, max_age_secs: u64) -> HeaderValue {
    attributes(headers, refresh_token, max_age_secs)
}

/// `Set-Cookie` that removes the cookie.
pub fn clear(headers: &HeaderMap) -> HeaderValue {
    attributes(headers, "", 0)
}

fn attributes(headers: &HeaderMap, value: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if https(headers) { "; Secure" } else { "" };
    // Refresh tokens are URL-safe base64 (the session store makes them); nothing to escape.
    HeaderValue::try_from(format!(
        "{NAME}={value}; Path={PATH}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("kommerce_refresh=; Path=/api/v1/auth; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_mode_header_selects_the_cookie_flow() {
        assert!(wanted(&headers(&[("kommerce-session", "cookie")])));
        assert!(wanted(&headers(&[("kommerce-session", " Cookie ")])));
        assert!(!wanted(&headers(&[("kommerce-session", "json")])));
        assert!(!wanted(&headers(&[])));
    }

    #[test]
    fn the_token_is_read_from_any_cookie_header() {
        let h = headers(&[
            ("cookie", "theme=dark; other=1"),
            ("cookie", "lang=ko;kommerce_refresh=abc-DEF_1 ; x=2"),
        ]);
        assert_eq!(token(&h).as_deref(), Some("abc-DEF_1"));
        assert_eq!(token(&headers(&[("cookie", "kommerce_refresh=")])), None);
        assert_eq!(token(&headers(&[("cookie", "xkommerce_refresh=a")])), None);
        assert_eq!(token(&headers(&[])), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_scoped_and_secure_over_https() {
        let plain = set(&headers(&[]), "tok", 600);
        assert_eq!(
            plain,
            "kommerce_refresh=tok; Path=/api/v1/auth; Max-Age=600; HttpOnly; SameSite=Strict"
        );
        let tls = set(&headers(&[("x-forwarded-proto", "https")]), "tok", 600);
        assert!(tls.to_str().unwrap().ends_with("; Secure"), "{tls:?}");
        let cleared = clear(&headers(&[("x-forwarded-proto", "https, http")]));
        assert_eq!(
            cleared,
            "kommerce_refresh=; Path=/api/v1/auth; Max-Age=0; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
