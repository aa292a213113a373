use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use kommerce_kit::auth::{AuthUser, Role};
use kommerce_kit::http::{ApiError, ApiJson, ClientAddr, Problem};

use crate::domain::{NewUser, ProfileBody, ProfilePatch, SignupBody};
use crate::{AppState, passwords, store};

/// Signs up: creates a customer account.
///
/// One account per e-mail address, whatever its case. Every attempt counts against the
/// client address: past `[throttle]`'s signups per address in a window it is refused with 429
/// and `Retry-After` (the rest of the window), and nothing is stored. Anyone may call it; log
/// in afterwards with `POST /api/v1/auth/login`.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    operation_id = "sign_up",
    request_body = SignupBody,
    responses(
        (status = 201, description = "The account.", body = store::User,
            headers(("Location" = String, description = "`/api/v1/users/me`."))),
        (status = 409, description = "An account with this e-mail already exists (`email-taken`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many signups from the client address; nothing was stored.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds until the window that refused the signup ends."))),
    ),
)]
#[tracing::instrument(skip_all)]
pub async fn signup(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ApiJson(body): ApiJson<SignupBody>,
) -> Result<impl IntoResponse, ApiError> {
    crate::throttle::signup(&s.redis, &s.live.get().throttle, ip).await?;
    let new = NewUser::try_from(body)?;
    let hash = passwords::hash(&new.password).await?;
    let user = store::insert_user(&s.db, &new, &hash, Role::Customer).await?;
    tracing::info!(user = %user.id, "signed up");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, "/api/v1/users/me")],
        Json(user),
    ))
}

/// The caller's account.
///
/// The profile of the account the access token is for.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    operation_id = "get_profile",
    security(("bearer" = [])),
    responses((status = 200, description = "The account.", body = store::User)),
)]
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn me(
    State(s): State<AppState>,
    caller: AuthUser,
) -> Result<Json<store::User>, ApiError> {
    store::user(&s.db, caller.id)
        .await?
        .map(Json)
        .ok_or(ApiError::Unauthorized)
}

/// Changes the caller's profile.
///
/// Name, phone, and a password change that needs the current password (a wrong one is a 422
/// naming `current_password`) and ends every other session of the caller; the calling
/// session goes on.
#[utoipa::path(
    patch,
    path = "/api/v1/users/me",
    operation_id = "update_profile",
    security(("bearer" = [])),
    request_body = ProfileBody,
    responses((status = 200, description = "The changed account.", body = store::User)),
)]
#[tracing::instrument(skip_all, fields(user = %caller.id))]
pub async fn update_me(
    State(s): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<Json<store::User>, ApiError> {
    let patch = ProfilePatch::try_from(body)?;
    let new_hash = match &patch.password {
        None => None,
        Some(change) => {
            let current = store::password_hash(&s.db, caller.id).await?;
            if !passwords::verify(&change.current, current).await? {
                return Err(ApiError::field(
                    "current_password",
                    "is not the current password",
                ));
            }
            Some(passwords::hash(&change.new).await?)
        }
    };
    let user = store::update_profile(
        &s.db,
        caller.id,
        patch.name.as_deref(),
        patch.phone.as_ref(),
        new_hash.as_deref(),
    )
    .await?
    .ok_or(ApiError::Unauthorized)?;
    if new_hash.is_some() {
        let ended = s
            .sessions
            .revoke_others(caller.id, caller.session_id)
            .await?;
        tracing::info!(ended, "password changed, other sessions ended");
    }
    Ok(Json(user))
}
