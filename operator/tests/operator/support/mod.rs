//! The test harness: a real Kubernetes control plane (API server, controller manager,
//! scheduler and simulated nodes, started by `scripts/control-plane.sh`, idempotent), the real
//! Kafka broker on 127.0.0.1:9092 and the real Redis on 127.0.0.1:6379. Every test works in a
//! namespace of its own with its own topic names and Redis key prefix, and runs the controllers in-process watching only that
//! namespace, so tests run in parallel with each other and with the rest of the workspace.
//!
//! `KOMMERCE_TEST_KUBECONFIG` points the tests at another API server (then the script is not
//! run); by default they use `$KOMMERCE_STATE_DIR/control-plane/kubeconfig`
//! (`~/.cache/kommerce/control-plane/kubeconfig`).

#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kommerce_operator::cli::Settings;
use kommerce_operator::context::Shared;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Api, Client, Config};
use serde_json::json;
use tokio::sync::watch;

pub const KAFKA: &str = "127.0.0.1:9092";
pub const REDIS: &str = "redis://127.0.0.1:6379";

/// Polls `check` until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the kubeconfig is: `KOMMERCE_TEST_KUBECONFIG`, else the control plane's, which this
/// starts (building it on first use) with `scripts/control-plane.sh up`.
pub fn kubeconfig_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(path) = std::env::var("KOMMERCE_TEST_KUBECONFIG") {
            return PathBuf::from(path);
        }
        let out = std::process::Command::new("bash")
            .arg(repo_dir().join("scripts/control-plane.sh"))
            .arg("up")
            .output()
            .expect("run scripts/control-plane.sh");
        assert!(
            out.status.success(),
            "scripts/control-plane.sh up failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = stdout
            .lines()
            .find_map(|l| {
                l.split_once("KUBECONFIG=")
                    .map(|(_, p)| p.trim().to_owned())
            })
            .expect("control-plane.sh prints KUBECONFIG=");
        PathBuf::from(path)
    })
    .clone()
}

pub async fn client() -> Client {
    let path = kubeconfig_path();
    let kubeconfig =
        Kubeconfig::read_from(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("client")
}

/// Installs (server-side apply, idempotent) the generated CRDs and waits until they are
/// established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let ssa = PatchParams::apply("kommerce-tests").force();
    for crd in kommerce_crds::all() {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &ssa, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not established"))
        .unwrap();
    }
}

/// A namespace of the test's own, created.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = unique(prefix);
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": name, "labels": { "kommerce.dev/test": "true" } },
    }))
    .unwrap();
    api.create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    name
}

/// A name of its own (namespaces, topics, pools).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

pub fn settings(namespace: &str) -> Settings {
    Settings {
        kafka_bootstrap: KAFKA.into(),
        redis_url: REDIS.into(),
        drift_interval: Duration::from_secs(1),
        stockpool_recheck: Duration::from_secs(1),
        stockpool_pending_recheck: Duration::from_millis(200),
        backend_timeout: Duration::from_secs(3),
        ingress_class: None,
        ingress_namespace: "ingress-nginx".into(),
        progress_deadline: Duration::from_secs(600),
        namespace: Some(namespace.into()),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        leader_election: false,
        lease_name: "kommerce-operator".into(),
        lease_namespace: namespace.into(),
        lease_duration: Duration::from_secs(15),
        identity: unique("test-operator"),
        log_filter: "warn".into(),
        text_logs: true,
    }
}

/// The controllers of one test, stopped when dropped.
pub struct Operator {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The operator's ServiceAccount in `namespace`, bound to the committed ClusterRole
/// (`manifests/operator/cluster-role.yaml`, applied as it is): the identity the operator runs
/// as in a cluster. Returns the user name to impersonate.
pub async fn operator_account(client: &Client, namespace: &str) -> String {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let ssa = PatchParams::apply("kommerce-tests").force();
    let text = std::fs::read_to_string(repo_dir().join("manifests/operator/cluster-role.yaml"))
        .expect("the committed ClusterRole");
    let role: ClusterRole = serde_yaml::from_str(&text).expect("a ClusterRole");
    let name = role.metadata.name.clone().unwrap();
    Api::<ClusterRole>::all(client.clone())
        .patch(&name, &ssa, &Patch::Apply(&role))
        .await
        .expect("apply the ClusterRole");
    let account = "kommerce-operator";
    let sa: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": account },
    }))
    .unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .patch(account, &ssa, &Patch::Apply(&sa))
        .await
        .expect("apply the ServiceAccount");
    let binding_name = format!("kommerce-operator-{namespace}");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": { "name": binding_name, "labels": { "kommerce.dev/test": "true" } },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name },
        "subjects": [{ "kind": "ServiceAccount", "name": account, "namespace": namespace }],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch(&binding_name, &ssa, &Patch::Apply(&binding))
        .await
        .expect("apply the ClusterRoleBinding");
    format!("system:serviceaccount:{namespace}:{account}")
}

/// A client that acts as `user` (impersonation): it may do exactly what that user may.
pub async fn client_as(user: &str) -> Client {
    let path = kubeconfig_path();
    let kubeconfig =
        Kubeconfig::read_from(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    config.auth_info.impersonate = Some(user.to_owned());
    Client::try_from(config).expect("client")
}

/// A kubeconfig file that acts as `user`, for the operator binary.
pub fn kubeconfig_as(user: &str, dir: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig_path()).expect("read the kubeconfig");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    for u in doc["users"].as_sequence_mut().expect("users") {
        u["user"]["as"] = serde_yaml::Value::String(user.to_owned());
    }
    let path = dir.join(format!("kubeconfig-{}", unique("as")));
    std::fs::write(&path, serde_yaml::to_string(&doc).expect("yaml")).expect("write");
    path
}

/// Installs the CRDs (as the test's administrator) and runs the controllers on
/// `settings.namespace` as the operator's ServiceAccount with the committed ClusterRole: a call
/// the role does not grant fails the test.
pub async fn start_operator(client: &Client, settings: Settings) -> Operator {
    kommerce_kit::telemetry::init(
        "kommerce-operator-test",
        &kommerce_kit::TelemetrySettings {
            log_filter: "warn".into(),
            json: false,
        },
    );
    install_crds(client).await;
    kommerce_operator::metrics::install();
    let namespace = settings
        .namespace
        .clone()
        .expect("tests watch one namespace");
    let user = operator_account(client, &namespace).await;
    let shared = Arc::new(Shared::new(client_as(&user).await, settings));
    let (stop, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(kommerce_operator::saga_topic::run(
            shared.clone(),
            kommerce_operator::stop_signal(rx.clone()),
        )),
        tokio::spawn(kommerce_operator::stock_pool::run(
            shared.clone(),
            kommerce_operator::stop_signal(rx.clone()),
        )),
        tokio::spawn(kommerce_operator::shop_service::run(
            shared,
            kommerce_operator::stop_signal(rx),
        )),
    ];
    Operator { stop, tasks }
}

/// A tool the control plane was built with (`kubectl`, `helm`): beside the kubeconfig in
/// `bin/`, else from `PATH` (a cluster named by `KOMMERCE_TEST_KUBECONFIG`).
pub fn tool(name: &str) -> PathBuf {
    let built = kubeconfig_path()
        .parent()
        .map(|dir| dir.join("bin").join(name));
    built
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `kubectl` against the test API server.
pub fn kubectl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(tool("kubectl"))
        .env("KUBECONFIG", kubeconfig_path())
        .args(args)
        .output()
        .expect("kubectl runs")
}

/// The condition of `type_` in a status's conditions, as (status, reason).
pub fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<(String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// `helm` of the control plane's build, against it, with its state in a temporary directory.
pub fn helm(args: &[&str]) -> std::process::Output {
    std::process::Command::new(tool("helm"))
        .env("KUBECONFIG", kubeconfig_path())
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("kommerce-helm/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("kommerce-helm/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("kommerce-helm/data"),
        )
        .args(args)
        .output()
        .expect("helm runs")
}

/// Waits until `n` ShopServices exist and each reports Ready for its current generation.
pub async fn all_shop_services_ready(
    shops: &Api<kommerce_crds::ShopService>,
    n: usize,
    wait: Duration,
) {
    eventually("every ShopService Ready", wait, || async {
        let all = shops
            .list(&kube::api::ListParams::default())
            .await
            .ok()?
            .items;
        (all.len() == n
            && all.iter().all(|ss| {
                ss.status.as_ref().is_some_and(|st| {
                    st.observed_generation == ss.metadata.generation
                        && condition(&st.conditions, kommerce_crds::conditions::READY)
                            .is_some_and(|(s, _)| s == "True")
                })
            }))
        .then_some(())
    })
    .await;
}
