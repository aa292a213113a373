//! `ShopService`: one Kommerce microservice (reconciled by the operator in part 2; the type is
//! defined now so the API is settled and its CRD can be installed).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// One microservice of the shop: its Deployment, Service, ConfigMap, Ingress rules, HPA and PDB.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kommerce.dev",
    version = "v1alpha1",
    kind = "ShopService",
    namespaced,
    status = "ShopServiceStatus",
    shortname = "shopsvc",
    category = "kommerce",
    derive = "PartialEq",
    doc = "One Kommerce microservice: Deployment, Service, ConfigMap, Ingress rules, HPA, PDB.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas"
    ),
    printcolumn(name = "Component", type_ = "string", json_path = ".spec.component"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "Ready Replicas",
        type_ = "integer",
        json_path = ".status.readyReplicas"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ShopServiceSpec {
    /// Which service this is.
    #[x_kube(validation = Rule::new("self == oldSelf").message("component is immutable"))]
    pub component: Component,
    /// Container image.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Replicas when autoscaling is off.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// Container port of the HTTP server.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Container resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Service configuration (sections of keys), rendered into the ConfigMap's `config.toml`:
    /// keys the service applies live reach the pods without a restart, any other change rolls
    /// the Deployment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub config: BTreeMap<String, serde_json::Value>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Secrets the service reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<ShopServiceSecrets>,
    /// Routes of the shared Ingress to this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// Horizontal pod autoscaling on CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

fn default_replicas() -> i32 {
    1
}

fn default_port() -> i32 {
    8080
}

/// The services of the shop.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    User,
    Item,
    Order,
    Pay,
    Review,
    Image,
    Web,
}

/// References to Secret keys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShopServiceSecrets {
    /// The PostgreSQL URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<SecretKeyRef>,
    /// The Ed25519 private key that signs access tokens (user service only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_private_key: Option<SecretKeyRef>,
    /// The public key every service verifies access tokens with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_public_key: Option<SecretKeyRef>,
}

/// A key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key in the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Ingress routing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Host name, e.g. `shop.example.com`.
    #[schemars(length(min = 1))]
    pub host: String,
    /// Path prefixes routed to this service, e.g. `/api/v1/items`.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.all(p, p.startsWith('/') && !p.startsWith('/internal'))").message("path prefixes start with / and never expose /internal"))]
    pub path_prefixes: Vec<String>,
}

/// CPU autoscaling.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("minReplicas must not exceed maxReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    /// Lower bound.
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Upper bound.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Target average CPU utilisation in percent.
    #[serde(default = "default_target_cpu")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

fn default_target_cpu() -> i32 {
    75
}

/// What the operator observed (filled in part 2).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShopServiceStatus {
    /// Ready, Progressing, Degraded.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The generation the operator last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Replicas of the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Ready replicas of the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Hash of the rendered config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Hash of the keys the service cannot change live: a change rolls the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_hash: Option<String>,
    /// How the last config change reached the pods: `live` (the service applied it) or `rolled`
    /// (a new ReplicaSet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_config_change: Option<String>,
    /// Where the service answers (through the Ingress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
