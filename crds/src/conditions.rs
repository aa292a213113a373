//! Condition types. Every status carries `conditions`, a list keyed by `type`
//! (`x-kubernetes-list-type: map`), each entry with its own `observedGeneration`, so
//! `kubectl wait --for=condition=Ready` works and stale conditions are recognisable.

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The resource is in the desired state and usable.
pub const READY: &str = "Ready";
/// The operator is moving the resource towards the desired state (or waiting for someone else,
/// e.g. item-service instances to acknowledge a StockPool config).
pub const PROGRESSING: &str = "Progressing";
/// The operator cannot reach the desired state right now (broker or Redis unreachable, a
/// request refused); it keeps retrying with backoff.
pub const DEGRADED: &str = "Degraded";
/// Another, older resource claims the same external object (topic name, Redis key); this one is
/// not applied until the other one goes away.
pub const RESOURCE_CONFLICT: &str = "ResourceConflict";
/// The resource is being deleted but its external state could not be removed yet (SagaTopic
/// with `deletionPolicy: Delete` and the broker refusing or unreachable).
pub const DELETION_BLOCKED: &str = "DeletionBlocked";

/// ShopService with `kommerce.dev/paused: "true"`: the operator changes nothing.
pub const RECONCILIATION_PAUSED: &str = "ReconciliationPaused";

/// Condition status values.
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";
