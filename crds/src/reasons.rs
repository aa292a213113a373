//! Every `reason` the operator writes into a condition or an Event, in one place (CamelCase, as
//! Kubernetes wants). `docs/operator.md` documents each one; keep both in step.

// ---- shared
/// Everything is as the spec asks.
pub const RECONCILED: &str = "Reconciled";
/// The spec fails a check the API server cannot express (e.g. the derived topic name is too long).
pub const INVALID_SPEC: &str = "InvalidSpec";
/// An older resource claims the same external object.
pub const CLAIMED_BY_OTHER: &str = "ClaimedByOther";
/// No other resource claims the external object.
pub const NO_CONFLICT: &str = "NoConflict";
/// Nothing is wrong.
pub const HEALTHY: &str = "Healthy";
/// Not reconciled because another resource owns the external object.
pub const NOT_APPLIED: &str = "NotApplied";

// ---- SagaTopic
/// The Kafka broker could not be reached (or timed out).
pub const BROKER_UNREACHABLE: &str = "BrokerUnreachable";
/// The broker refused a request (topic creation, partition increase, config change, deletion).
pub const BROKER_REJECTED: &str = "BrokerRejected";
/// The topic (or its dead-letter topic) was created.
pub const TOPIC_CREATED: &str = "TopicCreated";
/// Partitions were added to the topic.
pub const PARTITIONS_INCREASED: &str = "PartitionsIncreased";
/// The topic has more partitions than the spec asks for (Kafka cannot remove partitions).
pub const PARTITIONS_ABOVE_SPEC: &str = "PartitionsAboveSpec";
/// The topic config was changed to match the spec.
pub const CONFIG_APPLIED: &str = "ConfigApplied";
/// A config changed behind the operator's back was set back to the spec (see `status.drift`).
pub const DRIFT_CORRECTED: &str = "DriftCorrected";
/// The broker has not caught up with a change yet (metadata lags a create or a partition increase).
pub const WAITING_FOR_BROKER: &str = "WaitingForBroker";
/// `deletionPolicy: Delete`: the topics were deleted from the broker.
pub const TOPIC_DELETED: &str = "TopicDeleted";
/// `deletionPolicy: Orphan`: the topics were left on the broker.
pub const TOPIC_ORPHANED: &str = "TopicOrphaned";
/// Deleting the topics failed; the finalizer stays until it succeeds.
pub const DELETE_FAILED: &str = "DeleteFailed";

// ---- StockPool
/// Redis could not be reached (or a command failed).
pub const REDIS_UNAVAILABLE: &str = "RedisUnavailable";
/// The config document was written and announced.
pub const CONFIG_PUBLISHED: &str = "ConfigPublished";
/// Some live item-service instances have not yet acknowledged the current config hash.
pub const WAITING_FOR_ACKNOWLEDGEMENT: &str = "WaitingForAcknowledgement";
/// No live item-service instance acknowledges anything (none running, or none following this pool).
pub const NO_LIVE_INSTANCES: &str = "NoLiveInstances";
/// Every live instance runs the current config hash.
pub const ALL_ACKNOWLEDGED: &str = "AllAcknowledged";
/// The finalizer removed the config key; instances fall back to their default.
pub const CONFIG_REMOVED: &str = "ConfigRemoved";

// ---- ShopService
/// The Deployment is rolling out (or does not exist yet): not every replica is updated and
/// available.
pub const ROLLING_OUT: &str = "RollingOut";
/// Every desired replica is updated and available.
pub const AVAILABLE: &str = "Available";
/// The Deployment's rollout failed (its own reason follows in the message, e.g.
/// `ProgressDeadlineExceeded`), or a child was refused by the API server.
pub const DEPLOYMENT_FAILED: &str = "DeploymentFailed";
/// The config does not read as the service's settings (the message names the key); nothing
/// was applied.
pub const INVALID_CONFIG: &str = "InvalidConfig";
/// `kommerce.dev/paused: "true"`: nothing is applied.
pub const PAUSED: &str = "Paused";
/// The children were applied.
pub const CHILDREN_APPLIED: &str = "ChildrenApplied";
/// A child the spec no longer wants (Ingress, HPA, PDB) was deleted.
pub const CHILD_DELETED: &str = "ChildDeleted";
