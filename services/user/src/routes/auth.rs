use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson, ClientAddr, Problem};
use kommerce_kit::openapi::ToSchema;
use serde::{Deserialize, Serialize};

use super::cookie;
use crate::domain::Email;
use crate::{AppState, passwords, store, throttle};

/// An account's credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The account's e-mail address, whatever its case (at most 254 bytes).
    #[schema(format = Email, max_length = 254)]
    email: String,
    password: String,
}

/// A refresh token to exchange.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// The `refresh_token` of the last login or refresh; good for one use. Required, except
    /// with `Kommerce-Session: cookie`, where the cookie carries it and the body is `{}`.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A session's tokens: a short-lived access token for every service and the refresh token
/// that buys the next one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuthTokens)]
pub struct Tokens {
    /// A JWT to send as `Authorization: Bearer <access_token>` to every service.
    access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, pattern = "^Bearer$")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Opaque; good for one `POST /api/v1/auth/refresh`. Absent with `Kommerce-Session:
    /// cookie`: the `kommerce_refresh` cookie holds it instead, out of the page's reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Seconds until the refresh token expires.
    refresh_expires_in: u64,
    /// The account the tokens are for.
    user: store::User,
}

fn tokens(
    s: &AppState,
    user: store::User,
    sid: uuid::Uuid,
    refresh_token: String,
) -> Result<Tokens, ApiError> {
    let (access_token, _) = s.signer.sign(user.id, user.role(), sid)?;
    Ok(Tokens {
        access_token,
        token_type: "Bearer",
        expires_in: s.signer.ttl().as_secs(),
        refresh_token: Some(refresh_token),
        refresh_expires_in: s.sessions.refresh_ttl().as_secs(),
        user,
    })
}

/// The tokens as JSON; in the cookie flow the refresh token moves from the body into the cookie.
fn respond(headers: &HeaderMap, mut tokens: Tokens) -> Response {
    if !cookie::wanted(headers) {
        return Json(tokens).into_response();
    }
    let refresh = tokens.refresh_token.take().unwrap_or_default();
    let set = cookie::set(headers, &refresh, tokens.refresh_expires_in);
    ([(header::SET_COOKIE, set)], Json(tokens)).into_response()
}

/// `Kommerce-Session: cookie`, documented once for the three endpoints that take it.
const COOKIE_FLOW: &str = "`cookie` (browsers): the refresh token travels in the `kommerce_refresh` cookie \
     (HttpOnly, SameSite=Strict, Path=/api/v1/auth, Secure over HTTPS) instead of the body.";

/// Logs in: starts a session.
///
/// Exchanges an e-mail and a password for an access token and a refresh token. A wrong
/// password and an unknown e-mail get the same 401 after the same amount of hashing work, and
/// count the same towards the throttle: past `[throttle]`'s limits of failed logins per
/// account and per client address the login is refused with 429 and `Retry-After` (the rest
/// of the window) before any password is checked. A successful login clears its account's
/// failures. Anyone may call it. With `Kommerce-Session: cookie` the refresh token is set as
/// a cookie rather than returned.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "log_in",
    params(("Kommerce-Session" = Option<String>, Header, description = COOKIE_FLOW, pattern = "^cookie$")),
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in: the session's tokens.", body = Tokens,
            headers(("Set-Cookie" = String, description = "With `Kommerce-Session: cookie`: the refresh token."))),
        (status = 401, description = "The e-mail and password do not match an account (which of the two is never said).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for the account or from the client address; nothing was checked.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds until the window that refused the login ends."))),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email).map_err(|m| ApiError::field("email", m))?;
    let limits = s.live.get().throttle.clone();
    throttle::before_login(&s.redis, &limits, email.as_str(), ip).await?;
    let creds = store::credentials_by_email(&s.db, &email).await?;
    let id = creds.as_ref().map(|c| c.id);
    if !passwords::verify(&body.password, creds.map(|c| c.password_hash)).await? {
        throttle::login_failed(&s.redis, &limits, email.as_str(), ip).await?;
        return Err(ApiError::Unauthorized);
    }
    throttle::login_succeeded(&s.redis, email.as_str()).await;
    let user = match id {
        Some(id) => store::user(&s.db, id).await?,
        None => None,
    }
    .ok_or(ApiError::Unauthorized)?;
    let (sid, refresh) = s.sessions.start(user.id).await?;
    tracing::info!(user = %user.id, %sid, "logged in");
    Ok(respond(&headers, tokens(&s, user, sid, refresh)?))
}

/// Refreshes a session's tokens.
///
/// One refresh token buys a new access token and the next refresh token of the same session.
/// A refresh token is good for one use: presenting a used one again ends the whole session
/// (it was stolen or replayed). Anyone holding a refresh token may call it. With
/// `Kommerce-Session: cookie` the token is read from the cookie (the body is `{}`), the next
/// one is set there, and a refused one clears it.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "refresh_session",
    params(("Kommerce-Session" = Option<String>, Header, description = COOKIE_FLOW, pattern = "^cookie$")),
    request_body = RefreshBody,
    responses(
        (status = 200, description = "The session's next tokens.", body = Tokens,
            headers(("Set-Cookie" = String, description = "With `Kommerce-Session: cookie`: the next refresh token."))),
        (status = 401, description = "The refresh token is unknown, expired or already used (a reuse also ends its session), or its account is gone.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No `refresh_token` in the body (outside the cookie flow).", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Response, ApiError> {
    let by_cookie = cookie::wanted(&headers);
    let presented = if by_cookie {
        cookie::token(&headers)
    } else {
        Some(
            body.refresh_token
                .ok_or_else(|| ApiError::field("refresh_token", "is required"))?,
        )
    };
    match rotate(&s, presented.as_deref()).await {
        Ok(tokens) => Ok(respond(&headers, tokens)),
        // A refused cookie is of no further use: the browser forgets it.
        Err(ApiError::Unauthorized) if by_cookie => Ok((
            [(header::SET_COOKIE, cookie::clear(&headers))],
            ApiError::Unauthorized,
        )
            .into_response()),
        Err(e) => Err(e),
    }
}

async fn rotate(s: &AppState, presented: Option<&str>) -> Result<Tokens, ApiError> {
    let presented = presented.ok_or(ApiError::Unauthorized)?;
    let rotated = s.sessions.rotate(presented).await?;
    let Some(user) = store::user(&s.db, rotated.user).await? else {
        s.sessions.revoke(rotated.user, rotated.sid).await?;
        return Err(ApiError::Unauthorized);
    };
    tokens(s, user, rotated.sid, rotated.refresh_token)
}

/// Logs out: ends the caller's session.
///
/// Deletes the session's refresh tokens; every service refuses the presented access token,
/// and every other access token of the session, from now on. With `Kommerce-Session: cookie`
/// the refresh cookie is cleared too.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "log_out",
    params(("Kommerce-Session" = Option<String>, Header, description = COOKIE_FLOW, pattern = "^cookie$")),
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out.",
        headers(("Set-Cookie" = String, description = "With `Kommerce-Session: cookie`: the cleared cookie.")))),
)]
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    caller: AuthUser,
) -> Result<Response, ApiError> {
    s.sessions
        .deny_access_token(caller.token_id, caller.remaining_secs())
        .await?;
    s.sessions.revoke(caller.id, caller.session_id).await?;
    if cookie::wanted(&headers) {
        return Ok((
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, cookie::clear(&headers))],
        )
            .into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The access-token keys (JWKS).
///
/// The public keys access tokens are signed with, by `kid` (RFC 7638 thumbprints): the one
/// that signs now first, then any being introduced or retired. Every service verifies tokens
/// against this document; it changes when the user service's key file does (ADR 0015).
#[utoipa::path(
    get,
    path = "/api/v1/auth/jwks.json",
    operation_id = "get_jwks",
    responses((status = 200, description = "The key set.", body = kommerce_kit::jwks::JwkSet,
        headers(("Cache-Control" = String, description = "`public, max-age=60`.")))),
)]
pub async fn jwks(State(s): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=60")],
        Json(s.signer.jwks()),
    )
}
