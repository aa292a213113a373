//! `kommerce-kit`: what every Kommerce service shares, so that no service repeats it.
//!
//! A service is built from the same parts six times:
//! [`config`] (defaults ← file ← environment), [`telemetry`] (JSON logs, spans), [`http`]
//! (problem+json errors, the JSON extractor, layers, health and metrics endpoints), [`db`]
//! (pool + migrations), [`cache`] (Redis), [`auth`] (JWT verification and the deny-list),
//! [`server`] (bind, serve, graceful shutdown), [`workers`] (every background task, supervised
//! and stopped with the service). [`messaging`] is the place of the outbox and the consumers.

pub mod auth;
pub mod cache;
pub mod config;
pub mod credential;
pub mod db;
pub mod digest;
pub mod http;
pub mod jwks;
pub mod live;
pub mod messaging;
pub mod openapi;
pub mod peer;
mod reread;
pub mod saga;
pub mod secret;
pub mod server;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topology;
pub mod validate;
pub mod verified;
pub mod workers;

pub use config::{
    AuthSettings, DatabaseSettings, HttpSettings, KafkaSettings, PeersSettings, RedisSettings,
    TelemetrySettings,
};
pub use secret::Secret;
