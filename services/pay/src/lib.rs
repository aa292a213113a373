//! The Kommerce pay service: a wallet with a ledger, a simulated card, payments validated
//! against the cart, the address and current prices and charged idempotently, and the
//! refunds of the checkout saga (at most one per payment).

pub mod config;
pub mod deadline;
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
use kommerce_contracts::order::OrderClient;
use kommerce_contracts::saga::{ORDERS_TOPIC, PAYMENTS_TOPIC};
use kommerce_contracts::user::UserClient;
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

/// This service's own migrations (`services/pay/migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What this service's database needs, in order: the kit's messaging tables (outbox, inbox,
/// consumer positions) and its own migrations.
pub static MIGRATIONS: &[&Migrator] = &[&kommerce_kit::messaging::MIGRATOR, &MIGRATOR];

/// The name this service records its saga steps under.
pub const SERVICE: &str = "pay";

/// What every handler can extract: each field is `State<T>`-extractable by its type
/// (`FromRef`, derived), the verifier for the kit's `AuthUser`.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    verifier: Arc<TokenVerifier>,
    user: UserClient,
    item: ItemClient,
    order: OrderClient,
    payments_topic: String,
    wallet: config::WalletSettings,
    /// The settings as they are now (the simulated card changes live).
    live: Live<Settings>,
}

/// What the service's document says it is.
const ABOUT: &str = "Wallets with a ledger, payments validated against the cart, the address and \
     current prices and charged idempotently, and the refunds of the checkout saga.";

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
        let user = UserClient(Peer::new("user", &settings.peers.user, timeout).signed(&signer));
        let item = ItemClient(Peer::new("item", &settings.peers.item, timeout).signed(&signer));
        let order = OrderClient(Peer::new("order", &settings.peers.order, timeout).signed(&signer));
        let mut workers = Workers::new();
        // The config file is watched: live keys apply at once, the others at the next restart.
        let live = Live::start(&mut workers, settings.clone(), live_keys("pay"));
        let mut bus = workers.messaging(&db, kafka);
        bus.relay()?;
        let handler = Arc::new(events::SagaHandler {
            payments_topic: payments.clone(),
        });
        bus.consumers(
            &kafka.group("pay"),
            &[&orders],
            &handler,
            settings.saga.consumers,
            &hooks,
        )?;
        let saga = settings.saga.clone();
        let (deadline_db, deadline_topic) = (db.clone(), payments.clone());
        workers.spawn_loop("deadline", move |stop| {
            deadline::run(
                deadline_db.clone(),
                deadline_topic.clone(),
                Duration::from_secs(saga.deadline_secs),
                Duration::from_millis(saga.deadline_check_ms),
                stop,
            )
        });
        let state = AppState {
            db: db.clone(),
            verifier,
            user,
            item,
            order,
            payments_topic: payments,
            wallet: settings.wallet.clone(),
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
