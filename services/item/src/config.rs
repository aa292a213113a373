//! The item service's settings: the kit's sections plus `[stock]`, `[cache]`, `[kafka]` and
//! `[peers]`.

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
    pub stock: StockSettings,
    pub cache: CacheSettings,
    /// The rating consumer's broker (`review.rating-changed` on `kafka.topic("reviews")`).
    pub kafka: KafkaSettings,
    /// The image service (an item's images are attached and deleted there).
    pub peers: PeersSettings,
}

/// `[stock]`: which StockPool this instance follows and how it reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StockSettings {
    /// The StockPool's name (`kommerce:stockpool:<pool>`).
    pub pool: String,
    /// This instance's id in acknowledgements (the pod name); default `hostname-pid`.
    pub instance_id: Option<String>,
    /// How often the policy is re-read and acknowledged without an announcement.
    pub ack_interval_ms: u64,
    /// How often reservation-strategy ledger rows are folded into `items.stock`.
    pub fold_interval_ms: u64,
    /// How long a reservation id stays in the Redis gate's memory (PostgreSQL keeps it for ever).
    pub marker_ttl_secs: u64,
}

impl Default for StockSettings {
    fn default() -> Self {
        Self {
            pool: "default".into(),
            instance_id: None,
            ack_interval_ms: 10_000,
            fold_interval_ms: 200,
            marker_ttl_secs: 86_400,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    pub ttl_secs: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { ttl_secs: 300 }
    }
}
