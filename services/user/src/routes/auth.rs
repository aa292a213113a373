use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson, ClientAddr, Problem};
use kommerce_kit::openapi::ToSchema;
use serde::{Deserialize, Serialize};

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
    /// The `refresh_token` of the last login or refresh; good for one use.
    refresh_token: String,
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
    /// Opaque; good for one `POST /api/v1/auth/refresh`.
    refresh_token: String,
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
        refresh_token,
        refresh_expires_in: s.sessions.refresh_ttl().as_secs(),
        user,
    })
}

/// Logs in: starts a session.
///
/// Exchanges an e-mail and a password for an access token and a refresh token. A wrong
/// password and an unknown e-mail get the same 401 after the same amount of hashing work, and
/// count the same towards the throttle: past `[throttle]`'s limits of failed logins per
/// account and per client address the login is refused with 429 and `Retry-After` (the rest
/// of the window) before any password is checked. A successful login clears its account's
/// failures. Anyone may call it.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "log_in",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in: the session's tokens.", body = Tokens),
        (status = 401, description = "The e-mail and password do not match an account (which of the two is never said).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for the account or from the client address; nothing was checked.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds until the window that refused the login ends."))),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Tokens>, ApiError> {
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
    Ok(Json(tokens(&s, user, sid, refresh)?))
}

/// Refreshes a session's tokens.
///
/// One refresh token buys a new access token and the next refresh token of the same session.
/// A refresh token is good for one use: presenting a used one again ends the whole session
/// (it was stolen or replayed). Anyone holding a refresh token may call it.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "refresh_session",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "The session's next tokens.", body = Tokens),
        (status = 401, description = "The refresh token is unknown, expired or already used (a reuse also ends its session), or its account is gone.", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<Tokens>, ApiError> {
    let rotated = s.sessions.rotate(&body.refresh_token).await?;
    let Some(user) = store::user(&s.db, rotated.user).await? else {
        s.sessions.revoke(rotated.user, rotated.sid).await?;
        return Err(ApiError::Unauthorized);
    };
    Ok(Json(tokens(&s, user, rotated.sid, rotated.refresh_token)?))
}

/// Logs out: ends the caller's session.
///
/// Deletes the session's refresh tokens; every service refuses the presented access token,
/// and every other access token of the session, from now on.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "log_out",
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out.")),
)]
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn logout(State(s): State<AppState>, caller: AuthUser) -> Result<StatusCode, ApiError> {
    s.sessions
        .deny_access_token(caller.token_id, caller.remaining_secs())
        .await?;
    s.sessions.revoke(caller.id, caller.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
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
