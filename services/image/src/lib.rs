//! The Kommerce image service: uploads that are sniffed, fully decoded within a pixel limit
//! and re-encoded without metadata; a thumbnail variant; immutable versioned URLs with strong
//! ETags; bytes in an object store (local directory or S3-compatible), metadata in PostgreSQL;
//! attachment to items and reviews over the internal API; a sweeper for abandoned uploads.

pub mod config;
pub mod domain;
mod routes;
pub mod storage;
pub mod store;
pub mod sweeper;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use kommerce_contracts::config::live_keys;
use kommerce_kit::HttpSettings;
use kommerce_kit::auth::TokenVerifier;
use kommerce_kit::http::Readiness;
use kommerce_kit::live::Live;
use kommerce_kit::server::{Foundation, Service, StartError};
use kommerce_kit::workers::Workers;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub use config::Settings;
use domain::Limits;
use storage::Blobs;
pub use sweeper::Sweeper;

/// This service's migrations (`services/image/migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What this service's database needs: its own migrations (it sends and receives no events).
pub static MIGRATIONS: &[&Migrator] = &[&MIGRATOR];

/// What every handler can extract: each field is `State<T>`-extractable by its type
/// (`FromRef`, derived), the verifier for the kit's `AuthUser`.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub blobs: Blobs,
    verifier: Arc<TokenVerifier>,
    limits: Limits,
    max_bytes: usize,
    /// Decodes at a time: each holds a full pixel buffer (up to `max_pixels` × 4 bytes), so
    /// they are bounded by the CPUs rather than by the blocking pool's 512 threads.
    decoding: Arc<tokio::sync::Semaphore>,
}

/// The service's name: its OpenAPI document's tag.
pub const SERVICE: &str = "image";

/// What the service's document says it is.
const ABOUT: &str = "Image uploads, sniffed, decoded within limits and re-encoded without \
     metadata, with a thumbnail; served from immutable versioned URLs with strong ETags, and \
     attached to items and reviews over the internal API.";

/// The HTTP API, serving its OpenAPI document at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let verifier = state.verifier.clone();
    kommerce_kit::openapi::serve(routes::router(), SERVICE, ABOUT, verifier).with_state(state)
}

/// The service's OpenAPI document (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    kommerce_kit::openapi::document(SERVICE, ABOUT, routes::router().into_openapi())
}

/// Room for the multipart framing around a file of `max_bytes`, and for reading an oversized
/// file to its end so that its sender gets the 413 rather than a reset connection.
pub fn body_limit(http: &HttpSettings, max_bytes: usize) -> usize {
    http.body_limit_bytes
        .max(max_bytes.saturating_mul(2).saturating_add(1024 * 1024))
}

/// Builds the image service: `App::build(settings)` → [`Service`] → `port()`, `run_until(stop)`.
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
        let blobs = Blobs::open(&settings.storage)
            .map_err(|e| StartError::Setup(format!("image storage: {e}")))?;
        let images = &settings.images;
        let state = AppState {
            db: db.clone(),
            blobs: blobs.clone(),
            verifier,
            limits: Limits {
                max_pixels: images.max_pixels,
                thumb_side: images.thumb_side,
                jpeg_quality: images.jpeg_quality,
            },
            max_bytes: images.max_bytes,
            decoding: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            )),
        };
        let http = HttpSettings {
            body_limit_bytes: body_limit(&settings.http, images.max_bytes),
            ..settings.http.clone()
        };
        let sweeper = Sweeper::new(db.clone(), blobs, images.unattached_max_age());
        let interval = Duration::from_secs(images.sweep_interval_secs.max(1));
        let mut workers = Workers::new();
        // The config file is watched: live keys apply at once, the others at the next restart.
        let _live = Live::start(&mut workers, settings.clone(), live_keys("image"));
        workers.spawn_loop("sweeper", move |stop| sweeper.clone().run(interval, stop));
        Service::bind(&http, router(state), Readiness::new(db, redis), workers).await
    }
}
