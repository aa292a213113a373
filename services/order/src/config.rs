//! The order service's settings: the kit's sections plus `[saga]`.

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
    pub saga: SagaSettings,
}

/// `[saga]`: how this service takes part in the checkout saga.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SagaSettings {
    /// Consumers of the payments topic in this process (more than its partitions idle).
    pub consumers: u32,
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self { consumers: 3 }
    }
}
