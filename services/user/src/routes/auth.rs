use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson, ClientAddr};
use serde::{Deserialize, Serialize};

use crate::domain::Email;
use crate::{AppState, passwords, store, throttle};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

#[derive(Debug, Serialize)]
pub struct Tokens {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    refresh_expires_in: u64,
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

/// `POST /api/v1/auth/login`. A wrong password and an unknown e-mail get the same 401 body
/// after the same amount of hashing work, and count the same towards the throttle (429 with
/// `Retry-After` past `[throttle]`'s limits, per account and per client address).
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

/// `POST /api/v1/auth/refresh`: one refresh token buys a new access token and the next refresh
/// token; a second use of the same refresh token ends the session.
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

/// `POST /api/v1/auth/logout`: ends the caller's session (its refresh tokens) and refuses the
/// presented access token on every service until it expires.
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn logout(State(s): State<AppState>, caller: AuthUser) -> Result<StatusCode, ApiError> {
    s.sessions
        .deny_access_token(caller.token_id, caller.remaining_secs())
        .await?;
    s.sessions.revoke(caller.id, caller.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
