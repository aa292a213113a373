//! The Kommerce order service: carts, orders made by the checkout saga (consuming pay's
//! events, reserving stock through the item service), cancellation with refund and stock
//! restore, and the saga timeline.

pub mod config;
pub mod domain;
mod events;
mod routes;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use kommerce_contracts::config::live_keys;
use kommerce_contracts::item::ItemClient;
use kommerce_contracts::pay::PayClient;
use kommerce_contracts::saga::{ORDERS_TOPIC, PAYMENTS_TOPIC};
use kommerce_kit::auth::TokenVerifier;
use kommerce_kit::http::Readiness;
use kommerce_kit::live::Live;
use kommerce_kit::messaging::{Hooks, provision_topics};
use kommerce_kit::peer::Peer;
use kommerce_kit::server::{Foundation, Service, StartError};
use kommerce_kit::workers::Workers;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub use config::Settings;

/// This service's own migrations (`services/order/migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What this service's database needs, in order: the kit's messaging tables (outbox, inbox,
/// consumer positions) and its own migrations.
pub static MIGRATIONS: &[&Migrator] = &[&kommerce_kit::messaging::MIGRATOR, &MIGRATOR];

/// The name this service records its saga steps under.
pub const SERVICE: &str = "order";

/// What every handler can extract: each field is `State<T>`-extractable by its type
/// (`FromRef`, derived), the verifier for the kit's `AuthUser`.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    verifier: Arc<TokenVerifier>,
    item: ItemClient,
    pay: PayClient,
    orders_topic: String,
}

/// What the service's document says it is.
const ABOUT: &str = "Carts checked against the item service, the orders the checkout saga makes \
     from pay's payments (reserving stock), their cancellation with refund and stock release, \
     shipping, and the saga timeline.";

/// The HTTP API, serving its OpenAPI document at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let verifier = state.verifier.clone();
    kommerce_kit::openapi::serve(routes::router(), SERVICE, ABOUT, verifier).with_state(state)
}

/// The service's OpenAPI document (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    kommerce_kit::openapi::document(SERVICE, ABOUT, routes::router().into_openapi())
}

/// Builds the service: `App::build(settings)` → [`Service`] → `port()`, `run_until(stop)`.
#[derive(Debug)]
pub struct App;

impl App {
    pub async fn build(settings: Settings) -> Result<Service, StartError> {
        Self::build_with_hooks(settings, Hooks::default()).await
    }

    /// Like [`App::build`], with failpoints in the saga consumers (crash tests).
    pub async fn build_with_hooks(settings: Settings, hooks: Hooks) -> Result<Service, StartError> {
        Self::build_gated(settings, hooks, None).await
    }

    /// Like [`App::build_with_hooks`]; with a `gate`, every reserved order waits for a permit
    /// before it is made (tests that hold order creation past a payment's deadline).
    pub async fn build_gated(
        settings: Settings,
        hooks: Hooks,
        gate: Option<Arc<tokio::sync::Semaphore>>,
    ) -> Result<Service, StartError> {
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
        let (payments, orders) = (kafka.topic(PAYMENTS_TOPIC), kafka.topic(ORDERS_TOPIC));
        provision_topics(kafka, &[&payments, &orders]).await?;
        let timeout = Duration::from_millis(settings.peers.timeout_ms);
        let item = ItemClient(Peer::new("item", &settings.peers.item, timeout).signed(&signer));
        let pay = PayClient(Peer::new("pay", &settings.peers.pay, timeout).signed(&signer));
        let mut workers = Workers::new();
        // The config file is watched: live keys apply at once, the others at the next restart.
        let _live = Live::start(&mut workers, settings.clone(), live_keys("order"));
        let mut bus = workers.messaging(&db, kafka);
        bus.relay()?;
        let handler = Arc::new(events::SagaHandler {
            item: item.clone(),
            orders_topic: orders.clone(),
            gate,
        });
        bus.consumers(
            &kafka.group("order"),
            &[&payments],
            &handler,
            settings.saga.consumers,
            &hooks,
        )?;
        let state = AppState {
            db: db.clone(),
            verifier,
            item,
            pay,
            orders_topic: orders,
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
