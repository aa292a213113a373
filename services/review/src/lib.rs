//! The Kommerce review service: reviews by customers who bought the item (checked with the
//! order service), one per customer and item; listings and a rating summary; and every change
//! of an item's rating totals published as `review.rating-changed` through the outbox, which
//! the item service applies to its catalogue.

pub mod config;
pub mod domain;
pub mod events;
mod routes;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use kommerce_contracts::config::live_keys;
use kommerce_contracts::image::ImageClient;
use kommerce_contracts::order::OrderClient;
use kommerce_kit::auth::TokenVerifier;
use kommerce_kit::http::Readiness;
use kommerce_kit::live::Live;
use kommerce_kit::messaging::{self, provision_topics};
use kommerce_kit::peer::Peer;
use kommerce_kit::server::{Foundation, Service, StartError};
use kommerce_kit::workers::Workers;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub use config::Settings;
use events::REVIEWS_TOPIC;

/// This service's own migrations (`services/review/migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What this service's database needs, in order: the kit's messaging tables (outbox, inbox,
/// consumer positions) and its own migrations.
pub static MIGRATIONS: &[&Migrator] = &[&messaging::MIGRATOR, &MIGRATOR];

/// What every handler can extract: each field is `State<T>`-extractable by its type
/// (`FromRef`, derived), the verifier for the kit's `AuthUser`.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    verifier: Arc<TokenVerifier>,
    orders: OrderClient,
    images: ImageClient,
    /// `kafka.topic("reviews")`
    topic: String,
}

/// The service's name: its OpenAPI document's tag.
pub const SERVICE: &str = "review";

/// What the service's document says it is.
const ABOUT: &str = "Verified-purchase reviews of items, one per customer and item, with their \
     images; listings and each item's rating summary, whose changes reach the item service.";

/// The HTTP API, serving its OpenAPI document at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let verifier = state.verifier.clone();
    kommerce_kit::openapi::serve(routes::router(), SERVICE, ABOUT, verifier).with_state(state)
}

/// The service's OpenAPI document (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    kommerce_kit::openapi::document(SERVICE, ABOUT, routes::router().into_openapi())
}

/// Builds the review service: `App::build(settings)` → [`Service`] → `port()`, `run_until(stop)`.
#[derive(Debug)]
pub struct App;

impl App {
    pub async fn build(settings: Settings) -> Result<Service, StartError> {
        let Foundation {
            db,
            redis,
            verifier,
            signer,
        } = Foundation::connect(
            SERVICE,
            &settings.database,
            &settings.redis,
            &settings.auth,
            MIGRATIONS,
        )
        .await?;
        let kafka = &settings.kafka;
        let topic = kafka.topic(REVIEWS_TOPIC);
        provision_topics(kafka, &[&topic]).await?;
        let mut workers = Workers::new();
        // The config file is watched: live keys apply at once, the others at the next restart.
        let _live = Live::start(&mut workers, settings.clone(), live_keys("review"));
        let mut bus = workers.messaging(&db, kafka);
        bus.relay()?;
        let peers = &settings.peers;
        let timeout = Duration::from_millis(peers.timeout_ms);
        let state = AppState {
            db: db.clone(),
            verifier,
            orders: OrderClient(Peer::new("order", &peers.order, timeout).signed(&signer)),
            images: ImageClient(Peer::new("image", &peers.image, timeout).signed(&signer)),
            topic,
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
