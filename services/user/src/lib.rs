//! The Kommerce user service: signup, login with rotating refresh tokens, logout that takes
//! effect on every service, profile, and shipping addresses with exactly one default.

pub mod config;
pub mod domain;
mod passwords;
pub mod revocations;
mod routes;
mod sessions;
pub mod store;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use kommerce_contracts::config::live_keys;
use kommerce_kit::auth::{TokenSigner, TokenVerifier};
use kommerce_kit::cache::Redis;
use kommerce_kit::http::{ApiError, Readiness};
use kommerce_kit::live::Live;
use kommerce_kit::server::{Foundation, Service, StartError};
use kommerce_kit::workers::Workers;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub use config::Settings;
use domain::{NewUser, SignupBody};
use sessions::Sessions;

/// This service's migrations (`services/user/migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What this service's database needs: its own migrations (it sends and receives no events).
pub static MIGRATIONS: &[&Migrator] = &[&MIGRATOR];

/// What every handler can extract: each field is `State<T>`-extractable by its type
/// (`FromRef`, derived), the verifier for the kit's `AuthUser`.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub redis: Redis,
    verifier: Arc<TokenVerifier>,
    signer: Arc<TokenSigner>,
    sessions: Sessions,
    /// The settings as they are now (`[throttle]` changes live).
    live: Live<Settings>,
}

/// The service's name: its telemetry, its live keys and its OpenAPI document.
pub const SERVICE: &str = "user";

/// What the service's document says it is.
const ABOUT: &str = "Accounts: signup, login with rotating refresh tokens, logout that takes \
     effect on every service, the caller's profile, and shipping addresses with exactly one \
     default.";

/// The API routes (without the kit's health, metrics and layers), serving the OpenAPI
/// document at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let verifier = state.verifier.clone();
    kommerce_kit::openapi::serve(routes::router(), SERVICE, ABOUT, verifier).with_state(state)
}

/// The service's OpenAPI document (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    kommerce_kit::openapi::document(SERVICE, ABOUT, routes::router().into_openapi())
}

/// Builds the user service: `App::build(settings)` → [`Service`] → `port()`, `run_until(stop)`.
#[derive(Debug)]
pub struct App;

impl App {
    pub async fn build(settings: Settings) -> Result<Service, StartError> {
        let Foundation {
            db,
            redis,
            verifier,
            signer: _, // calls no other service
        } = Foundation::connect(
            SERVICE,
            &settings.database,
            &settings.redis,
            &settings.auth,
            MIGRATIONS,
        )
        .await?;
        let signer = Arc::new(TokenSigner::new(&settings.auth)?);
        let sessions = Sessions::new(
            db.clone(),
            redis.clone(),
            Duration::from_secs(settings.auth.refresh_ttl_secs),
            Duration::from_secs(settings.auth.access_ttl_secs),
        );
        if let (Some(email), Some(password)) = (
            &settings.user.bootstrap_admin_email,
            &settings.user.bootstrap_admin_password,
        ) {
            let created = create_admin(
                &db,
                email,
                password.expose(),
                &settings.user.bootstrap_admin_name,
                &settings.user.bootstrap_admin_phone,
            )
            .await
            .map_err(|e| StartError::Setup(format!("cannot bootstrap the admin account: {e}")))?;
            tracing::info!(created, "admin account ensured");
        }
        let mut workers = Workers::new();
        // The config file is watched: live keys apply at once, the others at the next restart.
        let live = Live::start(&mut workers, settings.clone(), live_keys(SERVICE));
        // The deny-list survives Redis losing its keys: restored from the database at once,
        // and whenever it goes missing.
        let (keeper_db, keeper_redis) = (db.clone(), redis.clone());
        workers.spawn_loop("revocations", move |stop| {
            revocations::keep(
                keeper_db.clone(),
                keeper_redis.clone(),
                Duration::from_secs(1),
                stop,
            )
        });
        let state = AppState {
            db: db.clone(),
            redis: redis.clone(),
            verifier,
            signer,
            sessions,
            live,
        };
        Service::bind(
            &settings.http,
            router(state),
            Readiness::new(db, redis),
            workers,
        )
        .await
    }
}

/// Creates an admin account, or promotes an existing account with that e-mail (keeping its
/// password). Returns whether an account was created. Used at start-up and by
/// `kommerce user create-admin`.
pub async fn create_admin(
    db: &PgPool,
    email: &str,
    password: &str,
    name: &str,
    phone: &str,
) -> Result<bool, ApiError> {
    let new = NewUser::try_from(SignupBody {
        email: email.to_owned(),
        password: password.to_owned(),
        name: name.to_owned(),
        phone: phone.to_owned(),
    })?;
    let hash = passwords::hash(&new.password).await?;
    Ok(store::ensure_admin(db, &new, &hash).await?)
}
