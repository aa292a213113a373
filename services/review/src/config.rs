//! The review service's settings: the kit's sections, `[kafka]` (rating changes go out through
//! the outbox) and `[peers]` (the order service's purchase check, the image service).

use kommerce_kit::{
    AuthSettings, DatabaseSettings, HttpSettings, KafkaSettings, PeersSettings, RedisSettings,
    TelemetrySettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub kafka: KafkaSettings,
    pub peers: PeersSettings,
}
