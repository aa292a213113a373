//! The pay service's settings: the kit's sections plus `[saga]`, `[wallet]` and `[card]`.

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
    pub wallet: WalletSettings,
    pub card: CardSettings,
}

/// `[saga]`: consumers of the orders topic in this process, and the deadline of a payment
/// waiting for its order.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SagaSettings {
    pub consumers: u32,
    /// A payment still `pending_order` this long after it was charged gets `payment.deadline`:
    /// the order service decides for good (its order, or a refund).
    pub deadline_secs: u64,
    /// How often due payments are looked for.
    pub deadline_check_ms: u64,
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self {
            consumers: 3,
            deadline_secs: 300,
            deadline_check_ms: 1_000,
        }
    }
}

/// `[wallet]`: the bound on one top-up, in minor units.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalletSettings {
    pub max_top_up_minor: i64,
}

impl Default for WalletSettings {
    fn default() -> Self {
        Self {
            max_top_up_minor: 1_000_000,
        }
    }
}

/// `[card]`: the simulated card network, for fault tests: how often it declines and how long
/// it takes to answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardSettings {
    pub failure_rate: f64,
    pub latency_ms: u64,
}

impl Default for CardSettings {
    fn default() -> Self {
        Self {
            failure_rate: 0.0,
            latency_ms: 0,
        }
    }
}
