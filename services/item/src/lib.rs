//! The Kommerce item service: a category tree, a searchable catalogue with cached product
//! pages, and stock that never oversells under three live-switchable strategies.

pub mod cache;
pub mod config;
pub mod domain;
pub mod events;
mod routes;
pub mod stock;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use kommerce_contracts::config::live_keys;
use kommerce_contracts::image::ImageClient;
use kommerce_kit::auth::TokenVerifier;
use kommerce_kit::cache::Redis;
use kommerce_kit::http::Readiness;
use kommerce_kit::live::Live;
use kommerce_kit::messaging::{self, Hooks, provision_topics};
use kommerce_kit::server::{Foundation, Service, StartError};
use kommerce_kit::workers::Workers;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub use config::Settings;
use stock::Stock;

/// This service's own migrations (`services/item/migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What this service's database needs, in order: the kit's messaging tables (outbox, inbox,
/// consumer positions) and its own migrations.
pub static MIGRATIONS: &[&Migrator] = &[&messaging::MIGRATOR, &MIGRATOR];

/// What every handler can extract: each field is `State<T>`-extractable by its type
/// (`FromRef`, derived), the verifier for the kit's `AuthUser`.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub redis: Redis,
    pub stock: Stock,
    verifier: Arc<TokenVerifier>,
    images: ImageClient,
    /// The settings as they are now (`cache.ttl_secs` changes live).
    live: Live<Settings>,
    instance_id: String,
}

/// The service's name.
pub const SERVICE: &str = "item";

/// What the service's document says it is.
const ABOUT: &str = "The catalogue (a category tree and searchable items with cached product \
     pages, written by admins) and stock that never oversells: admin corrections with a ledger \
     and the all-or-nothing, idempotent reservations of the checkout saga.";

/// The HTTP API, serving its OpenAPI document at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let verifier = state.verifier.clone();
    kommerce_kit::openapi::serve(routes::router(), SERVICE, ABOUT, verifier).with_state(state)
}

/// The service's OpenAPI document (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    kommerce_kit::openapi::document(SERVICE, ABOUT, routes::router().into_openapi())
}

fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map_or_else(|_| "local".into(), |h| h.trim().to_owned());
    format!("{host}-{}", std::process::id())
}

/// Builds the item service: `App::build(settings)` → [`Service`] → `port()`, `run_until(stop)`.
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
        let instance_id = settings
            .stock
            .instance_id
            .clone()
            .unwrap_or_else(default_instance_id);
        let keys = stock::live::keys(&redis, &settings.stock.pool, &instance_id);
        let mut workers = Workers::new();
        // The config file is watched: live keys apply at once, the others at the next restart.
        let live = Live::start(&mut workers, settings.clone(), live_keys("item"));
        let policy = stock::live::start(
            &mut workers,
            db.clone(),
            redis.clone(),
            settings.redis.clone(),
            keys,
            Duration::from_millis(settings.stock.ack_interval_ms),
            Duration::from_millis(settings.stock.fold_interval_ms),
        )
        .await;
        let stock = Stock::new(
            &mut workers,
            db.clone(),
            redis.clone(),
            policy,
            settings.stock.marker_ttl_secs,
        );
        // Ratings: the review service's totals, applied once per event and newest-seq-wins.
        let kafka = &settings.kafka;
        let reviews = kafka.topic(events::REVIEWS_TOPIC);
        provision_topics(kafka, &[&reviews]).await?;
        let mut bus = workers.messaging(&db, kafka);
        bus.consumers(
            &kafka.group("item"),
            &[&reviews],
            &Arc::new(events::RatingHandler {
                redis: redis.clone(),
            }),
            1,
            &Hooks::default(),
        )?;
        let state = AppState {
            db: db.clone(),
            redis: redis.clone(),
            stock,
            verifier,
            images: ImageClient(
                kommerce_kit::peer::Peer::new(
                    "image",
                    &settings.peers.image,
                    Duration::from_millis(settings.peers.timeout_ms),
                )
                .signed(&signer),
            ),
            live,
            instance_id,
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
