//! The Kommerce item service: a category tree, a searchable catalogue with cached product
//! pages, and stock that never oversells under three live-switchable strategies.

pub mod cache;
pub mod config;
pub mod domain;
mod routes;
pub mod stock;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use kommerce_kit::auth::TokenVerifier;
use kommerce_kit::cache::Redis;
use kommerce_kit::http::{Readiness, service_router};
use kommerce_kit::server::{Server, StartError};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

pub use config::Settings;
use stock::Stock;

/// This service's migrations (`services/item/migrations`).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: Redis,
    pub stock: Stock,
    verifier: Arc<TokenVerifier>,
    cache_ttl_secs: u64,
    instance_id: String,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

pub fn router(state: AppState) -> Router {
    routes::router().with_state(state)
}

fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map_or_else(|_| "local".into(), |h| h.trim().to_owned());
    format!("{host}-{}", std::process::id())
}

#[derive(Debug)]
pub struct App {
    server: Server,
    port: u16,
    stock: Stock,
}

impl App {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let db = kommerce_kit::db::connect_and_migrate(&settings.database, &MIGRATOR).await?;
        let redis = Redis::connect(&settings.redis)
            .await
            .map_err(StartError::Redis)?;
        let verifier = Arc::new(TokenVerifier::new(&settings.auth, redis.clone())?);
        let instance_id = settings
            .stock
            .instance_id
            .clone()
            .unwrap_or_else(default_instance_id);
        let keys = stock::live::keys(&redis, &settings.stock.pool, &instance_id);
        let policy = stock::live::start(
            db.clone(),
            redis.clone(),
            settings.redis.clone(),
            keys,
            Duration::from_millis(settings.stock.ack_interval_ms),
            Duration::from_millis(settings.stock.fold_interval_ms),
            kommerce_kit::server::shutdown_signal(),
        )
        .await;
        let stock = Stock::new(
            db.clone(),
            redis.clone(),
            policy,
            settings.stock.marker_ttl_secs,
        );
        let state = AppState {
            db: db.clone(),
            redis: redis.clone(),
            stock: stock.clone(),
            verifier,
            cache_ttl_secs: settings.cache.ttl_secs,
            instance_id,
        };
        let app = service_router(router(state), Readiness { db, redis }, &settings.http);
        let server = Server::bind(&settings.http, app)
            .await
            .map_err(StartError::Bind)?;
        let port = server.local_addr().map_err(StartError::Bind)?.port();
        Ok(Self {
            server,
            port,
            stock,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The stock engine (tests and the benchmark inspect the applied policy through it).
    pub fn stock(&self) -> &Stock {
        &self.stock
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.run_until_stopped().await
    }

    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.server.run_until(stop).await
    }
}
