use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use kommerce_kit::auth::{AuthUser, Role};
use kommerce_kit::http::{ApiError, ApiJson, ClientAddr};

use crate::domain::{NewUser, ProfileBody, ProfilePatch, SignupBody};
use crate::{AppState, passwords, store};

/// `POST /api/v1/users`: a new customer account.
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

/// `GET /api/v1/users/me`
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

/// `PATCH /api/v1/users/me`: name, phone, and a password change that needs the current
/// password and ends every other session of the user.
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
