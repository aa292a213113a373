//! `SagaTopic`: a Kafka topic (and its dead-letter topic) created and kept in shape through the
//! Kafka Admin API.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A Kafka topic for the checkout saga (or any event stream), plus `<topic>.dlq` when
/// `deadLetter` is on. The operator creates it, adds partitions, keeps its config as written
/// here (correcting and reporting drift) and, with `deletionPolicy: Delete`, removes it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kommerce.dev",
    version = "v1alpha1",
    kind = "SagaTopic",
    namespaced,
    status = "SagaTopicStatus",
    shortname = "sgt",
    category = "kommerce",
    derive = "PartialEq",
    doc = "A Kafka topic (plus its dead-letter topic) reconciled through the Kafka Admin API.",
    printcolumn(name = "Topic", type_ = "string", json_path = ".status.topicName"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(name = "DLQ", type_ = "boolean", json_path = ".spec.deadLetter"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)"
).message("topicName is immutable: create a new SagaTopic for a new topic").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct SagaTopicSpec {
    /// Name of the Kafka topic. Defaults to the resource name; immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]+$"), length(min = 1, max = 245))]
    pub topic_name: Option<String>,

    /// Number of partitions. May only grow: Kafka cannot remove partitions.
    #[schemars(range(min = 1, max = 10000))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("partitions may only grow (Kafka cannot remove partitions)"))]
    pub partitions: i32,

    /// Replication factor, fixed at creation (immutable).
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1, max = 32767))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("replicationFactor is immutable"))]
    pub replication_factor: i32,

    /// Topic configs, as Kafka names them (`retention.ms`, `cleanup.policy`,
    /// `min.insync.replicas`, ...). The operator keeps these keys at these values; a value
    /// changed on the broker is set back and listed in `status.drift`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::topic_config")]
    #[x_kube(validation = Rule::new(
        "!('cleanup.policy' in self) || self['cleanup.policy'] in ['delete', 'compact', 'compact,delete', 'delete,compact']"
    ).message("cleanup.policy must be delete, compact or compact,delete"))]
    #[x_kube(validation = Rule::new(
        "self.all(k, !(k in ['retention.ms', 'retention.bytes', 'segment.ms', 'segment.bytes', 'min.insync.replicas', 'max.message.bytes']) || self[k].matches('^-?[0-9]+$'))"
    ).message("retention.ms, retention.bytes, segment.ms, segment.bytes, min.insync.replicas and max.message.bytes must be integers"))]
    pub config: BTreeMap<String, String>,

    /// Also manage a dead-letter topic `<topicName>.dlq` with the same partitions and config.
    #[serde(default = "default_true")]
    pub dead_letter: bool,

    /// What happens to the topics when this resource is deleted: `Orphan` (default) keeps them,
    /// `Delete` deletes them from the broker.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Kafka bootstrap servers (`host:port,...`). Defaults to the operator's `--kafka-bootstrap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub bootstrap_servers: Option<String>,
}

fn default_replication_factor() -> i32 {
    1
}

fn default_true() -> bool {
    true
}

/// What deleting a SagaTopic does to the topics on the broker.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Delete the topic and its dead-letter topic.
    Delete,
    /// Leave them on the broker (the default: data outlives a mistaken `kubectl delete`).
    #[default]
    Orphan,
}

/// What the operator observed and did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SagaTopicStatus {
    /// Ready, Progressing, Degraded, ResourceConflict, DeletionBlocked.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The generation the operator last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Kafka topic this resource manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// What the broker reports for each managed topic (the topic, then its dead-letter topic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<TopicStatus>,
    /// Config values found changed on the broker and set back, newest last (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<ConfigDrift>,
}

/// One topic as the broker reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// Topic name.
    pub name: String,
    /// Partitions on the broker.
    pub partitions: i32,
}

/// A config value that was changed behind the operator's back, and set back.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigDrift {
    /// The topic the value was found on.
    pub topic: String,
    /// Config key, e.g. `retention.ms`.
    pub key: String,
    /// The value in the spec.
    pub desired: String,
    /// The value found on the broker (absent: the key was not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// When the operator set it back.
    pub corrected_at: Time,
}
