//! The Kommerce pay service: a wallet with a ledger, a simulated card, payments validated
//! against the cart, the address and current prices and charged idempotently, and the
//! refunds of the checkout saga (at most one per payment).

pub mod config;
pub mod domain;
mod events;
mod routes;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use kommerce_kit::auth::TokenVerifier;
use kommerce_kit::cache::Redis;
use kommerce_kit::contracts::saga::{ORDERS_TOPIC, PAYMENTS_TOPIC};
use kommerce_kit::http::{Readiness, service_router};
use kommerce_kit::messaging::{Hooks, Workers, provision_topics};
use kommerce_kit::peer::Peer;
use kommerce_kit::server::{Server, StartError};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub use config::Settings;

/// This service's own migrations (`services/pay/migrations`).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Everything its database needs: the kit's messaging tables and its own.
pub static MIGRATIONS: [&Migrator; 2] = [&kommerce_kit::messaging::MIGRATOR, &MIGRATOR];

/// The name this service records its saga steps under.
pub const SERVICE: &str = "pay";

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: PgPool,
    verifier: Arc<TokenVerifier>,
    user: Peer,
    item: Peer,
    order: Peer,
    payments_topic: String,
    wallet: config::WalletSettings,
    card: config::CardSettings,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

pub fn router(state: AppState) -> Router {
    routes::router().with_state(state)
}

#[derive(Debug)]
pub struct App {
    server: Server,
    port: u16,
    workers: Workers,
}

impl App {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        Self::build_with_hooks(settings, Hooks::default()).await
    }

    /// Like [`App::build`], with failpoints in the saga consumers (crash tests).
    pub async fn build_with_hooks(settings: Settings, hooks: Hooks) -> Result<Self, StartError> {
        let db = kommerce_kit::db::connect_and_migrate_all(&settings.database, &MIGRATIONS).await?;
        let redis = Redis::connect(&settings.redis)
            .await
            .map_err(StartError::Redis)?;
        let verifier = Arc::new(TokenVerifier::new(&settings.auth, redis.clone())?);
        let kafka = &settings.kafka;
        let (payments, orders) = (kafka.topic(PAYMENTS_TOPIC), kafka.topic(ORDERS_TOPIC));
        provision_topics(kafka, &[&payments, &orders])
            .await
            .map_err(|e| StartError::Setup(e.to_string()))?;
        let timeout = Duration::from_millis(settings.peers.timeout_ms);
        let user = Peer::new("user", &settings.peers.user, timeout);
        let item = Peer::new("item", &settings.peers.item, timeout);
        let order = Peer::new("order", &settings.peers.order, timeout);
        let mut workers = Workers::new();
        workers
            .relay(db.clone(), kafka)
            .map_err(|e| StartError::Setup(e.to_string()))?;
        let handler = Arc::new(events::SagaHandler {
            payments_topic: payments.clone(),
        });
        workers
            .consumers(
                &db,
                kafka,
                &kafka.group("pay"),
                &[&orders],
                &handler,
                settings.saga.consumers,
                &hooks,
            )
            .map_err(|e| StartError::Setup(e.to_string()))?;
        let state = AppState {
            db: db.clone(),
            verifier,
            user,
            item,
            order,
            payments_topic: payments,
            wallet: settings.wallet.clone(),
            card: settings.card.clone(),
        };
        let app = service_router(router(state), Readiness { db, redis }, &settings.http);
        let server = Server::bind(&settings.http, app)
            .await
            .map_err(StartError::Bind)?;
        let port = server.local_addr().map_err(StartError::Bind)?.port();
        Ok(Self {
            server,
            port,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(kommerce_kit::server::shutdown_signal())
            .await
    }

    /// Serves until `stop`, then stops the relay and consumers (each finishes its message).
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = self.server.run_until(stop).await;
        self.workers.stop().await;
        served
    }
}
