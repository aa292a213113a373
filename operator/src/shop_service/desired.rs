//! ShopService, the pure half: the spec validated and the service's `config.toml` rendered and
//! hashed; every child built (Deployment, Service, ConfigMap, Ingress, HPA, PDB,
//! NetworkPolicy) with deterministic names, labels and the owner reference; which children are
//! no longer wanted; and the conditions read off the real Deployment. No client, no clock.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, SecretKeySelector, SecurityContext, Service,
    ServicePort, ServiceSpec, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicySpec, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kommerce_crds::conditions::{DEGRADED, PROGRESSING, READY};
use kommerce_crds::{Component, ShopService, reasons};
use kube::{Resource as _, ResourceExt as _};

use crate::MANAGER;
use crate::conditions::{Desired, no_conflict};

/// Where the rendered config is mounted; the services read `KOMMERCE_CONFIG`.
pub const CONFIG_DIR: &str = "/etc/kommerce";
pub const CONFIG_FILE: &str = "config.toml";
/// The pod template annotation whose change rolls the Deployment: the hash of the keys the
/// service cannot apply live.
pub const RESTART_HASH_ANNOTATION: &str = "kommerce.dev/restart-hash";
/// The pod template annotation holding the service credential's public key.
pub const CREDENTIAL_ANNOTATION: &str = "kommerce.dev/credential";
/// A ShopService with this annotation set to `"true"` is left alone.
pub const PAUSED_ANNOTATION: &str = "kommerce.dev/paused";
/// How long a pod may drain after SIGTERM: the services stop accepting, finish in-flight
/// requests and their workers' current message well within it.
pub const GRACE_SECONDS: i64 = 30;
/// Label every pod of the platform carries (the NetworkPolicy admits them).
pub const PART_OF: &str = "kommerce";

/// Why a spec cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("config.{key}: {message}")]
    Config { key: String, message: String },
}

/// A spec that passed every check: the rendered config, its hash, and the hash of the keys
/// the service cannot change live (the one that rolls the Deployment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub config_toml: String,
    pub config_hash: String,
    pub restart_hash: String,
}

pub fn component_name(c: Component) -> &'static str {
    match c {
        Component::User => "user",
        Component::Item => "item",
        Component::Order => "order",
        Component::Pay => "pay",
        Component::Review => "review",
        Component::Image => "image",
        Component::Web => "web",
    }
}

/// Renders `spec.config` (sections of keys) as the service's `config.toml`: every top-level
/// value must be a table (a `[section]`), and TOML has no null.
pub fn validate(ss: &ShopService) -> Result<Validated, Invalid> {
    let mut table = toml::Table::new();
    for (section, value) in &ss.spec.config {
        let serde_json::Value::Object(_) = value else {
            return Err(Invalid::Config {
                key: section.clone(),
                message: "must be a section (an object of keys)".into(),
            });
        };
        if let Some(path) = null_at(value, section) {
            return Err(Invalid::Config {
                key: path,
                message: "null is not a value in a config file".into(),
            });
        }
        let v: toml::Value =
            serde_json::from_value(value.clone()).map_err(|e| Invalid::Config {
                key: section.clone(),
                message: e.to_string(),
            })?;
        table.insert(section.clone(), v);
    }
    let config_toml = toml::to_string(&table).map_err(|e| Invalid::Config {
        key: "*".into(),
        message: e.to_string(),
    })?;
    check_settings(ss.spec.component, &config_toml)?;
    let config_hash = hash(&config_toml);
    let live = kommerce_contracts::config::live_keys(component_name(ss.spec.component));
    let mut restart = table;
    for key in live {
        if let Some((section, name)) = key.split_once('.')
            && let Some(toml::Value::Table(t)) = restart.get_mut(section)
        {
            t.remove(name);
        }
    }
    let restart_hash = hash(&toml::to_string(&restart).unwrap_or_default());
    Ok(Validated {
        config_toml,
        config_hash,
        restart_hash,
    })
}

/// How the change from the status's config to `v` reaches the pods: `live` when only live keys
/// changed, `rolled` otherwise; unchanged config keeps what the status said.
pub fn config_change(previous: &kommerce_crds::ShopServiceStatus, v: &Validated) -> Option<String> {
    match (&previous.config_hash, &previous.restart_hash) {
        (Some(c), _) if *c == v.config_hash => previous.last_config_change.clone(),
        (Some(_), Some(r)) if *r == v.restart_hash => Some("live".into()),
        (Some(_), _) => Some("rolled".into()),
        (None, _) => None,
    }
}

/// The rendered file read as the service reads it (its settings type, unknown keys refused):
/// an invalid config never reaches a pod.
fn check_settings(component: Component, text: &str) -> Result<(), Invalid> {
    use kommerce_kit::config::check_toml;
    let checked = match component {
        Component::User => check_toml::<kommerce_user::Settings>(text),
        Component::Item => check_toml::<kommerce_item::Settings>(text),
        Component::Order => check_toml::<kommerce_order::Settings>(text),
        Component::Pay => check_toml::<kommerce_pay::Settings>(text),
        Component::Review => check_toml::<kommerce_review::Settings>(text),
        Component::Image => check_toml::<kommerce_image::Settings>(text),
        // The storefront's static server reads no Kommerce config.
        Component::Web => Ok(()),
    };
    checked.map_err(|(key, message)| Invalid::Config { key, message })
}

fn null_at(v: &serde_json::Value, path: &str) -> Option<String> {
    match v {
        serde_json::Value::Null => Some(path.to_owned()),
        serde_json::Value::Object(m) => m
            .iter()
            .find_map(|(k, v)| null_at(v, &format!("{path}.{k}"))),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| null_at(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// First 16 hex digits of SHA-256.
pub fn hash(text: &str) -> String {
    kommerce_kit::digest::sha256_hex(text.as_bytes(), 8)
}

/// The labels every child carries; the selector is the first two.
pub fn labels(ss: &ShopService) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".into(),
            component_name(ss.spec.component).into(),
        ),
        ("app.kubernetes.io/instance".into(), ss.name_any()),
        ("app.kubernetes.io/component".into(), "microservice".into()),
        ("app.kubernetes.io/part-of".into(), PART_OF.into()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
    ])
}

fn selector(ss: &ShopService) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".into(),
            component_name(ss.spec.component).into(),
        ),
        ("app.kubernetes.io/instance".into(), ss.name_any()),
    ])
}

/// A child's metadata: the ShopService's name, namespace, labels, and it as the controlling
/// owner (so deleting the ShopService garbage-collects the child).
fn meta(ss: &ShopService) -> ObjectMeta {
    ObjectMeta {
        name: Some(ss.name_any()),
        namespace: ss.namespace(),
        labels: Some(labels(ss)),
        owner_references: ss
            .controller_owner_ref(&())
            .map(|o: OwnerReference| vec![o]),
        ..ObjectMeta::default()
    }
}

/// Whether the spec's replicas are applied (not when an HPA owns the count).
fn replicas(ss: &ShopService) -> Option<i32> {
    ss.spec.autoscaling.is_none().then_some(ss.spec.replicas)
}

/// The most replicas the spec can run (the HPA's maximum when autoscaling).
fn max_replicas(ss: &ShopService) -> i32 {
    ss.spec
        .autoscaling
        .as_ref()
        .map_or(ss.spec.replicas, |a| a.max_replicas)
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn secret_env(name: &str, r: Option<&kommerce_crds::SecretKeyRef>) -> Option<EnvVar> {
    r.map(|r| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    })
}

/// The service's container: image, port, probes, restricted security context, env (config
/// path, secret references, the spec's own), the config file and a writable /tmp.
fn container(ss: &ShopService) -> Container {
    let spec = &ss.spec;
    let mut env = vec![
        EnvVar {
            name: "KOMMERCE_CONFIG".into(),
            value: Some(format!("{CONFIG_DIR}/{CONFIG_FILE}")),
            ..EnvVar::default()
        },
        // The pod's name is its stable name among the service's instances: its Kafka consumers
        // are static group members under it (ADR 0020), which a container restart keeps.
        EnvVar {
            name: "KOMMERCE_KAFKA__INSTANCE_ID".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
    ];
    // Its service credential and its callers' public keys (ADR 0021).
    env.push(EnvVar {
        name: "KOMMERCE_AUTH__SERVICE_KEY".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: super::credential::secret_name(ss),
                key: super::credential::PRIVATE_KEY.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    });
    env.push(EnvVar {
        name: "KOMMERCE_AUTH__SERVICE_KEYS_DIR".into(),
        value: Some(super::credential::KEYS_DIR.into()),
        ..EnvVar::default()
    });
    if let Some(s) = &spec.secrets {
        env.extend(
            [
                secret_env("KOMMERCE_DATABASE__URL", s.database_url.as_ref()),
                secret_env("KOMMERCE_AUTH__SIGNING_KEY", s.jwt_private_key.as_ref()),
                secret_env("KOMMERCE_AUTH__PUBLIC_KEY", s.jwt_public_key.as_ref()),
            ]
            .into_iter()
            .flatten(),
        );
    }
    env.extend(spec.env.iter().cloned());
    Container {
        name: component_name(spec.component).into(),
        image: Some(spec.image.clone()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: spec.port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(env),
        resources: spec.resources.clone(),
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        // Up to 60 × 2 s for migrations at start-up before liveness counts.
        startup_probe: Some(http_probe("/healthz", 2, 60)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "service-keys".into(),
                mount_path: super::credential::KEYS_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

/// The Deployment; `credential` is the service's public key: a new one (the Secret deleted to
/// rotate it) rolls the pods, which read the private key once, at start.
pub fn deployment(
    ss: &ShopService,
    v: &Validated,
    credential: &str,
    progress_deadline: Duration,
) -> Deployment {
    let spec = &ss.spec;
    let topology_spread = (max_replicas(ss) >= 2).then(|| {
        vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(selector(ss)),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        }]
    });
    let annotations = BTreeMap::from([
        (RESTART_HASH_ANNOTATION.to_owned(), v.restart_hash.clone()),
        (CREDENTIAL_ANNOTATION.to_owned(), credential.to_owned()),
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), spec.port.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ]);
    Deployment {
        metadata: meta(ss),
        spec: Some(DeploymentSpec {
            replicas: replicas(ss),
            selector: LabelSelector {
                match_labels: Some(selector(ss)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                ..DeploymentStrategy::default()
            }),
            progress_deadline_seconds: Some(
                i32::try_from(progress_deadline.as_secs()).unwrap_or(i32::MAX),
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(ss)),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container(ss)],
                    automount_service_account_token: Some(false),
                    termination_grace_period_seconds: Some(GRACE_SECONDS),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65_532),
                        run_as_group: Some(65_532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    topology_spread_constraints: topology_spread,
                    volumes: Some(vec![
                        Volume {
                            name: "config".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: ss.name_any(),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "service-keys".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: super::credential::KEYS_CONFIG_MAP.into(),
                                // Made by the first reconcile; a pod never waits for it.
                                optional: Some(true),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "tmp".into(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

pub fn service(ss: &ShopService) -> Service {
    Service {
        metadata: meta(ss),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector(ss)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn config_map(ss: &ShopService, v: &Validated) -> ConfigMap {
    ConfigMap {
        metadata: meta(ss),
        data: Some(BTreeMap::from([(
            CONFIG_FILE.into(),
            v.config_toml.clone(),
        )])),
        ..ConfigMap::default()
    }
}

/// The Ingress when `spec.ingress` is set: one rule, a Prefix path per prefix.
pub fn ingress(ss: &ShopService, class: Option<&str>) -> Option<Ingress> {
    let spec = ss.spec.ingress.as_ref()?;
    let paths = spec
        .path_prefixes
        .iter()
        .map(|p| HTTPIngressPath {
            path: Some(p.clone()),
            path_type: "Prefix".into(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: ss.name_any(),
                    port: Some(ServiceBackendPort {
                        name: Some("http".into()),
                        ..ServiceBackendPort::default()
                    }),
                }),
                ..IngressBackend::default()
            },
        })
        .collect();
    Some(Ingress {
        metadata: meta(ss),
        spec: Some(IngressSpec {
            ingress_class_name: class.map(str::to_owned),
            rules: Some(vec![IngressRule {
                host: Some(spec.host.clone()),
                http: Some(HTTPIngressRuleValue { paths }),
            }]),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    })
}

/// The HPA when `spec.autoscaling` is set.
pub fn hpa(ss: &ShopService) -> Option<HorizontalPodAutoscaler> {
    let a = ss.spec.autoscaling.as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: meta(ss),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: ss.name_any(),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(a.target_cpu_utilization_percentage),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        },
        ..HorizontalPodAutoscaler::default()
    })
}

/// The PDB when the service can run two or more replicas: one may be down at a time.
pub fn pdb(ss: &ShopService) -> Option<PodDisruptionBudget> {
    let min = ss
        .spec
        .autoscaling
        .as_ref()
        .map_or(ss.spec.replicas, |a| a.min_replicas);
    (min >= 2).then(|| PodDisruptionBudget {
        metadata: meta(ss),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(ss)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

/// Ingress to the pods only from the ingress controller's namespace and from other Kommerce
/// pods (peers call `/internal` inside the cluster).
pub fn network_policy(ss: &ShopService, ingress_namespace: &str) -> NetworkPolicy {
    let from_namespace = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".into(),
                ingress_namespace.into(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let from_kommerce = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "app.kubernetes.io/part-of".into(),
                PART_OF.into(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    NetworkPolicy {
        metadata: meta(ss),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(ss)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![from_namespace, from_kommerce]),
                ..NetworkPolicyIngressRule::default()
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

/// The optional children, and whether the spec wants each now: one not wanted is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub ingress: bool,
    pub hpa: bool,
    pub pdb: bool,
}

pub fn wanted(ss: &ShopService) -> Wanted {
    Wanted {
        ingress: ss.spec.ingress.is_some(),
        hpa: ss.spec.autoscaling.is_some(),
        pdb: pdb(ss).is_some(),
    }
}

/// `http://<host><first prefix>` when the service is behind the Ingress.
pub fn url(ss: &ShopService) -> Option<String> {
    let i = ss.spec.ingress.as_ref()?;
    Some(format!(
        "http://{}{}",
        i.host,
        i.path_prefixes.first().map_or("/", String::as_str)
    ))
}

pub fn is_paused(ss: &ShopService) -> bool {
    ss.annotations()
        .get(PAUSED_ANNOTATION)
        .is_some_and(|v| v == "true")
}

/// What the Deployment says, read into the ShopService's conditions and replica counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub conditions: Vec<Desired>,
    pub replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    /// Whether the Deployment is done with this ShopService's generation.
    pub settled: bool,
}

/// Ready when the Deployment controller has seen the latest template and every desired replica
/// is updated and available; Progressing while it rolls (with the Deployment's reason);
/// Degraded with the Deployment's own reason when its rollout failed.
pub fn observe(d: Option<&Deployment>) -> Observed {
    let waiting = |why: &str| Observed {
        conditions: vec![
            Desired::new(READY, false, reasons::ROLLING_OUT, why),
            Desired::new(PROGRESSING, true, reasons::ROLLING_OUT, why),
            Desired::new(DEGRADED, false, reasons::HEALTHY, ""),
            no_conflict(),
        ],
        replicas: None,
        ready_replicas: None,
        settled: false,
    };
    let Some(d) = d else {
        return waiting("the Deployment does not exist yet");
    };
    let Some(status) = d.status.as_ref() else {
        return waiting("the Deployment has no status yet");
    };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let conditions = status.conditions.clone().unwrap_or_default();
    let find = |t: &str| conditions.iter().find(|c| c.type_ == t);
    let seen = status.observed_generation >= d.metadata.generation;
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let mut observed = waiting("");
    observed.replicas = status.replicas;
    observed.ready_replicas = status.ready_replicas;
    let failed = find("Progressing")
        .filter(|c| c.status == "False")
        .or_else(|| find("ReplicaFailure").filter(|c| c.status == "True"));
    if let Some(c) = failed {
        let reason = c.reason.clone().unwrap_or_else(|| c.type_.clone());
        let message = format!("{reason}: {}", c.message.clone().unwrap_or_default());
        observed.conditions = vec![
            Desired::new(READY, false, reasons::DEPLOYMENT_FAILED, message.clone()),
            Desired::new(
                PROGRESSING,
                false,
                reasons::DEPLOYMENT_FAILED,
                message.clone(),
            ),
            Desired::new(DEGRADED, true, reasons::DEPLOYMENT_FAILED, message),
            no_conflict(),
        ];
        return observed;
    }
    if seen && updated == desired && available == desired && total == desired {
        let msg = format!("{available}/{desired} replicas updated and available");
        observed.conditions = vec![
            Desired::new(READY, true, reasons::AVAILABLE, msg.clone()),
            Desired::new(PROGRESSING, false, reasons::AVAILABLE, msg),
            Desired::new(DEGRADED, false, reasons::HEALTHY, ""),
            no_conflict(),
        ];
        observed.settled = true;
        return observed;
    }
    let why = find("Progressing")
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| {
            format!("{updated} of {desired} replicas updated, {available} available")
        });
    observed.conditions = waiting(&why).conditions;
    observed
}

/// The conditions of a paused ShopService: nothing is changed until the annotation goes.
pub fn conditions_paused() -> Vec<Desired> {
    vec![Desired::new(
        kommerce_crds::conditions::RECONCILIATION_PAUSED,
        true,
        reasons::PAUSED,
        format!("{PAUSED_ANNOTATION} is \"true\": nothing is applied until it is removed"),
    )]
}

#[cfg(test)]
mod tests;
