//! `StockPool`: the stock-locking policy item-service instances apply live, written to Redis
//! following `docs/stockpool-contract.md`.

// The contract's names (leaseMs, backoffBaseMs, ...) all end in Ms; the lint also fires on the
// copy of `SpinLockParams` that `KubeSchema` generates, hence module level.
#![allow(clippy::struct_field_names)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// How item-service instances following this pool guard stock decrements. The operator writes
/// the policy to Redis (`<keyPrefix>stockpool:<name>`), announces it, and reports how many live
/// instances have acknowledged it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kommerce.dev",
    version = "v1alpha1",
    kind = "StockPool",
    namespaced,
    status = "StockPoolStatus",
    shortname = "spool",
    category = "kommerce",
    derive = "PartialEq",
    doc = "The stock-locking policy of item-service instances, written to Redis and acknowledged live.",
    printcolumn(name = "Strategy", type_ = "string", json_path = ".spec.strategy"),
    printcolumn(name = "Hash", type_ = "string", json_path = ".status.hash"),
    printcolumn(
        name = "Acknowledged",
        type_ = "string",
        json_path = ".status.acknowledged"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StockPoolSpec {
    /// How a stock decrement is guarded: `spinLock`, `conditionalUpdate` or `reservation`.
    pub strategy: Strategy,
    /// Parameters of the Redis spin lock (sent for every strategy, used by `spinLock`).
    #[serde(default)]
    pub spin_lock: SpinLockParams,
    /// Parameters of the reservation strategy.
    #[serde(default)]
    pub reservation: ReservationParams,
    /// Where the policy is written.
    #[serde(default)]
    pub redis: RedisLocation,
}

/// The strategies of the contract, spelled as in the config document.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    /// Redis `SET NX PX` lease with backoff, bounded wait, compare-and-delete release.
    SpinLock,
    /// No lock: a conditional `UPDATE ... WHERE stock >= n`.
    ConditionalUpdate,
    /// An atomic Redis script gates, a PostgreSQL ledger records, a periodic reconcile heals.
    Reservation,
}

impl Strategy {
    /// The spelling used in the config document and the CRD.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpinLock => "spinLock",
            Self::ConditionalUpdate => "conditionalUpdate",
            Self::Reservation => "reservation",
        }
    }
}

/// Spin-lock parameters (milliseconds).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.backoffBaseMs <= self.backoffMaxMs").message("backoffBaseMs must not exceed backoffMaxMs"))]
#[serde(rename_all = "camelCase")]
pub struct SpinLockParams {
    /// Lease of the `SET NX PX` lock.
    #[serde(default = "default_lease_ms")]
    #[schemars(range(min = 1, max = 600_000))]
    pub lease_ms: u32,
    /// First backoff step between attempts (full jitter).
    #[serde(default = "default_backoff_base_ms")]
    #[schemars(range(min = 1, max = 60_000))]
    pub backoff_base_ms: u32,
    /// Largest backoff step.
    #[serde(default = "default_backoff_max_ms")]
    #[schemars(range(min = 1, max = 60_000))]
    pub backoff_max_ms: u32,
    /// Give up (503) after waiting this long for the lock.
    #[serde(default = "default_max_wait_ms")]
    #[schemars(range(min = 1, max = 600_000))]
    pub max_wait_ms: u32,
}

impl Default for SpinLockParams {
    fn default() -> Self {
        Self {
            lease_ms: default_lease_ms(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            max_wait_ms: default_max_wait_ms(),
        }
    }
}

fn default_lease_ms() -> u32 {
    2000
}
fn default_backoff_base_ms() -> u32 {
    2
}
fn default_backoff_max_ms() -> u32 {
    50
}
fn default_max_wait_ms() -> u32 {
    2000
}

/// Reservation parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationParams {
    /// How often the reservation counters in Redis are rebuilt from PostgreSQL.
    #[serde(default = "default_reconcile_interval_seconds")]
    #[schemars(range(min = 1, max = 86_400))]
    pub reconcile_interval_seconds: u32,
}

impl Default for ReservationParams {
    fn default() -> Self {
        Self {
            reconcile_interval_seconds: default_reconcile_interval_seconds(),
        }
    }
}

fn default_reconcile_interval_seconds() -> u32 {
    30
}

/// The Redis the item services read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisLocation {
    /// `redis://host:port/db`. Defaults to the operator's `--redis-url` (put credentials there,
    /// not in a custom resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^rediss?://"))]
    pub url: Option<String>,
    /// The deployment's key prefix (`redis.key_prefix` of the item service).
    #[serde(default = "default_key_prefix")]
    #[schemars(length(max = 200))]
    pub key_prefix: String,
}

impl Default for RedisLocation {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: default_key_prefix(),
        }
    }
}

fn default_key_prefix() -> String {
    "kommerce:".into()
}

/// What the operator wrote and what the instances acknowledged.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StockPoolStatus {
    /// Ready, Progressing, Degraded, ResourceConflict.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The generation the operator last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Redis key holding the config document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Hash of the config document written (the contract's `hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// `"N/M instances on <hash>"`: N of the M live instances run the current hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
    /// M: live instances (unexpired acknowledgement keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<i32>,
    /// N: live instances on the current hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_instances: Option<i32>,
}
