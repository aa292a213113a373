//! ShopService against the real API server, Deployment, ReplicaSet and garbage-collection
//! controllers and simulated nodes: children appear, owned; status follows the real
//! Deployment; a config change rolls a new ReplicaSet; unwanted children go; paused is
//! honoured; deleting the ShopService collects every child.

use std::time::Duration;

use crate::support::{self, condition, eventually};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kommerce_crds::ShopService;
use kommerce_crds::conditions::{READY, RECONCILIATION_PAUSED};
use kommerce_crds::reasons;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

fn doc(name: &str, replicas: i32, ttl: u32, ingress: bool) -> Value {
    doc_with(name, replicas, ttl, 10, ingress)
}

/// `ttl` is a key the item service applies live; `pool` (`database.max_connections`) is not.
fn doc_with(name: &str, replicas: i32, ttl: u32, pool: u32, ingress: bool) -> Value {
    let mut spec = json!({
        "component": "item",
        "image": "kommerce/item:1",
        "replicas": replicas,
        "config": {
            "cache": { "ttl_secs": ttl },
            "database": { "max_connections": pool },
            "telemetry": { "log_filter": "info" },
        },
    });
    if ingress {
        spec["ingress"] =
            json!({ "host": "shop.test", "pathPrefixes": ["/api/v1/items", "/api/v1/categories"] });
    }
    json!({ "apiVersion": "kommerce.dev/v1alpha1", "kind": "ShopService", "metadata": { "name": name }, "spec": spec })
}

/// The ShopService once it is Ready on config `hash` (any hash when `None`) with `replicas`
/// ready replicas.
async fn ready(
    api: &Api<ShopService>,
    name: &str,
    replicas: i32,
    not_hash: Option<&str>,
) -> ShopService {
    eventually(
        &format!("{name} ready with {replicas} replicas"),
        WAIT,
        || async {
            let ss = api.get(name).await.ok()?;
            let st = ss.status.clone()?;
            let fresh = not_hash.is_none_or(|h| st.config_hash.as_deref() != Some(h));
            (fresh
                && condition(&st.conditions, READY)? == ("True".into(), reasons::AVAILABLE.into())
                && st.ready_replicas == Some(replicas)
                && st.observed_generation == ss.metadata.generation)
                .then_some(ss)
        },
    )
    .await
}

async fn gone<K>(api: &Api<K>, name: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{what} deleted"), WAIT, || async {
        api.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one resource's life, step by step
async fn a_shop_service_runs_rolls_on_config_drops_unwanted_children_and_is_collected() {
    let client = support::client().await;
    let ns = support::namespace(&client, "shop").await;
    let _operator = support::start_operator(&client, support::settings(&ns)).await;
    let api: Api<ShopService> = Api::namespaced(client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let ssa = PatchParams::apply("kommerce-tests");
    let name = "item";

    // Applied: every child appears, owned by the ShopService, and the status follows the real
    // Deployment to Ready.
    api.patch(name, &ssa, &Patch::Apply(doc(name, 2, 60, true)))
        .await
        .unwrap();
    let ss = ready(&api, name, 2, None).await;
    let status = ss.status.clone().unwrap();
    let first = status.config_hash.clone().unwrap();
    assert_eq!(status.url.as_deref(), Some("http://shop.test/api/v1/items"));
    let d = deployments.get(name).await.unwrap();
    let owner = &d.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("ShopService", ss.metadata.uid.as_deref().unwrap())
    );
    let template = d.spec.clone().unwrap().template;
    assert_eq!(
        template.metadata.unwrap().annotations.unwrap()["kommerce.dev/restart-hash"],
        status.restart_hash.clone().unwrap()
    );
    let cm: ConfigMap = Api::namespaced(client.clone(), &ns)
        .get(name)
        .await
        .unwrap();
    let toml = &cm.data.unwrap()["config.toml"];
    assert!(toml.contains("[cache]\nttl_secs = 60"), "{toml}");
    let _: Service = Api::namespaced(client.clone(), &ns)
        .get(name)
        .await
        .unwrap();
    let _: NetworkPolicy = Api::namespaced(client.clone(), &ns)
        .get(name)
        .await
        .unwrap();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    assert!(ingresses.get_opt(name).await.unwrap().is_some());
    assert!(
        pdbs.get_opt(name).await.unwrap().is_some(),
        "2 replicas: a PDB"
    );

    let out = support::kubectl(&[
        "wait",
        "-n",
        &ns,
        "--for=condition=Ready",
        "shopsvc",
        "--all",
        "--timeout=30s",
    ]);
    assert!(
        out.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = support::kubectl(&["get", "shopsvc", "-n", &ns]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .eq([
                "NAME",
                "COMPONENT",
                "REPLICAS",
                "READY",
                "REPLICAS",
                "READY",
                "AGE"
            ]),
        "{table}"
    );

    // A change of a live key reaches the pods through the ConfigMap: no new ReplicaSet.
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    api.patch(name, &ssa, &Patch::Apply(doc(name, 2, 61, true)))
        .await
        .unwrap();
    let ss = ready(&api, name, 2, Some(&first)).await;
    let status = ss.status.unwrap();
    let second = status.config_hash.clone().unwrap();
    assert_eq!(status.last_config_change.as_deref(), Some("live"));
    let cm: ConfigMap = Api::namespaced(client.clone(), &ns)
        .get(name)
        .await
        .unwrap();
    assert!(cm.data.unwrap()["config.toml"].contains("ttl_secs = 61"));
    let replica_sets = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(replica_sets.len(), 1, "a live change rolls nothing");

    // Any other change rolls a new ReplicaSet, and the status follows it back to Ready.
    api.patch(name, &ssa, &Patch::Apply(doc_with(name, 2, 61, 20, true)))
        .await
        .unwrap();
    let ss = ready(&api, name, 2, Some(&second)).await;
    assert_eq!(
        ss.status.unwrap().last_config_change.as_deref(),
        Some("rolled")
    );
    let replica_sets = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        replica_sets.len(),
        2,
        "the config change rolled a new ReplicaSet"
    );

    // No ingress, one replica: the Ingress and the PDB go.
    api.patch(name, &ssa, &Patch::Apply(doc_with(name, 1, 61, 20, false)))
        .await
        .unwrap();
    gone(&ingresses, name, "the Ingress").await;
    gone(&pdbs, name, "the PDB").await;
    ready(&api, name, 1, None).await;

    // Paused: a change is not applied, and the status says so.
    api.patch(
        name,
        &ssa,
        &Patch::Apply(json!({
            "apiVersion": "kommerce.dev/v1alpha1", "kind": "ShopService",
            "metadata": { "name": name, "annotations": { "kommerce.dev/paused": "true" } },
            "spec": doc_with(name, 3, 61, 20, false)["spec"],
        })),
    )
    .await
    .unwrap();
    eventually("paused reported", WAIT, || async {
        let st = api.get(name).await.ok()?.status?;
        (condition(&st.conditions, RECONCILIATION_PAUSED)?.0 == "True").then_some(())
    })
    .await;
    let d = deployments.get(name).await.unwrap();
    assert_eq!(
        d.spec.unwrap().replicas,
        Some(1),
        "paused: replicas 3 not applied"
    );

    // Deleted: the garbage collector takes every child.
    api.delete(name, &DeleteParams::background()).await.unwrap();
    gone(&deployments, name, "the Deployment").await;
}

/// The samples as a platform engineer applies them: every ShopService becomes Ready and
/// `kubectl wait` says so.
#[tokio::test]
async fn the_samples_become_ready() {
    let client = support::client().await;
    let ns = support::namespace(&client, "samples").await;
    let _operator = support::start_operator(&client, support::settings(&ns)).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("shopservice-"))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 7);
    for f in &files {
        let out = support::kubectl(&[
            "apply",
            "--server-side",
            "-n",
            &ns,
            "-f",
            f.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let api: Api<ShopService> = Api::namespaced(client.clone(), &ns);
    support::all_shop_services_ready(&api, 7, WAIT).await;
    let out = support::kubectl(&[
        "wait",
        "-n",
        &ns,
        "--for=condition=Ready",
        "shopsvc",
        "--all",
        "--timeout=30s",
    ]);
    assert!(
        out.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pods that can never run (here: more CPU than any node has, so they stay unschedulable)
/// make the Deployment miss its progress deadline; the ShopService reports it Degraded with
/// the Deployment's own reason.
#[tokio::test]
async fn a_deployment_that_never_progresses_is_degraded_with_its_reason() {
    use kommerce_crds::conditions::DEGRADED;
    let client = support::client().await;
    let ns = support::namespace(&client, "stuck").await;
    let mut settings = support::settings(&ns);
    settings.progress_deadline = Duration::from_secs(2);
    let _operator = support::start_operator(&client, settings).await;
    let api: Api<ShopService> = Api::namespaced(client.clone(), &ns);
    let doc = json!({
        "apiVersion": "kommerce.dev/v1alpha1", "kind": "ShopService", "metadata": { "name": "review" },
        "spec": {
            "component": "review", "image": "kommerce/review:1",
            "resources": { "requests": { "cpu": "100000" } },
        },
    });
    api.patch(
        "review",
        &PatchParams::apply("kommerce-tests"),
        &Patch::Apply(doc),
    )
    .await
    .unwrap();
    let st = eventually("review degraded", WAIT, || async {
        let st = api.get("review").await.ok()?.status?;
        (condition(&st.conditions, DEGRADED)? == ("True".into(), reasons::DEPLOYMENT_FAILED.into()))
            .then_some(st)
    })
    .await;
    let degraded = st.conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
    assert!(
        degraded.message.starts_with("ProgressDeadlineExceeded"),
        "{}",
        degraded.message
    );
    assert_eq!(condition(&st.conditions, READY).unwrap().0, "False");
}

/// A ShopService of `component` with nothing but a log filter in its config.
fn plain(name: &str, component: &str, log_filter: &str) -> Value {
    json!({ "apiVersion": "kommerce.dev/v1alpha1", "kind": "ShopService", "metadata": { "name": name },
            "spec": { "component": component, "image": format!("kommerce/{component}:1"), "replicas": 1,
                      "config": { "telemetry": { "log_filter": log_filter } } } })
}

/// The public key of a ShopService's credential Secret.
async fn credential(secrets: &Api<Secret>, name: &str) -> (String, String) {
    let s = eventually(&format!("{name}'s credential"), WAIT, || async {
        secrets.get_opt(&format!("{name}-credential")).await.ok()?
    })
    .await;
    let private = String::from_utf8(s.data.unwrap()["private"].0.clone()).unwrap();
    let public = kommerce_kit::auth::ed25519_public_key(&private).expect("a private key");
    (private, public)
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one credential's life, step by step
async fn every_shop_service_gets_a_credential_its_callers_can_check_and_a_rotation_rolls_it() {
    let client = support::client().await;
    let ns = support::namespace(&client, "cred").await;
    let _operator = support::start_operator(&client, support::settings(&ns)).await;
    let api: Api<ShopService> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let ssa = PatchParams::apply("kommerce-tests");
    for (name, component) in [("item", "item"), ("order", "order")] {
        api.patch(name, &ssa, &Patch::Apply(plain(name, component, "info")))
            .await
            .unwrap();
    }
    ready(&api, "item", 1, None).await;
    ready(&api, "order", 1, None).await;

    // Each has its own private key; the namespace's ConfigMap publishes both public keys.
    let (order_private, order_public) = credential(&secrets, "order").await;
    let (_, item_public) = credential(&secrets, "item").await;
    assert_ne!(order_public, item_public);
    let keys = config_maps.get("kommerce-service-keys").await.unwrap();
    let data = keys.data.clone().unwrap();
    assert_eq!(
        (data["item"].as_str(), data["order"].as_str()),
        (item_public.as_str(), order_public.as_str())
    );
    assert_eq!(keys.metadata.owner_references.unwrap().len(), 2);

    // What a service does with it: order's credential, checked by item against the published
    // keys (the mounted ConfigMap is a directory of them).
    let dir = std::env::temp_dir().join(support::unique("service-keys"));
    std::fs::create_dir_all(&dir).unwrap();
    for (caller, public) in &data {
        std::fs::write(dir.join(caller), public).unwrap();
    }
    let keyring = kommerce_kit::credential::Keyring::new(&kommerce_kit::AuthSettings {
        service_keys_dir: dir.display().to_string(),
        ..kommerce_kit::AuthSettings::default()
    })
    .unwrap();
    let token = kommerce_kit::credential::credential(
        &order_private,
        "order",
        "item",
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(keyring.verify(&token, "item").unwrap(), "order");
    let _ = std::fs::remove_dir_all(&dir);

    // Reconciles keep the key: a config change rolls item, its Secret stays as it was.
    let version = secrets
        .get("item-credential")
        .await
        .unwrap()
        .metadata
        .resource_version;
    let before = ready(&api, "item", 1, None).await;
    api.patch("item", &ssa, &Patch::Apply(plain("item", "item", "debug")))
        .await
        .unwrap();
    ready(
        &api,
        "item",
        1,
        before.status.unwrap().config_hash.as_deref(),
    )
    .await;
    assert_eq!(
        secrets
            .get("item-credential")
            .await
            .unwrap()
            .metadata
            .resource_version,
        version
    );

    // Rotation: delete the Secret; the next reconcile makes a new pair, publishes it and
    // rolls the pods (they read the private key at start).
    secrets
        .delete("order-credential", &DeleteParams::default())
        .await
        .unwrap();
    api.patch(
        "order",
        &ssa,
        &Patch::Apply(plain("order", "order", "debug")),
    )
    .await
    .unwrap();
    let rotated = eventually("order's key rotated and published", WAIT, || async {
        let data = config_maps.get("kommerce-service-keys").await.ok()?.data?;
        (data["order"] != order_public && data["item"] == item_public)
            .then(|| data["order"].clone())
    })
    .await;
    assert_eq!(credential(&secrets, "order").await.1, rotated);
    let annotations = deployments
        .get("order")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(annotations["kommerce.dev/credential"], rotated);

    // Deleting the ShopServices takes their keys with them.
    for name in ["item", "order"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    gone(&secrets, "item-credential", "item's credential").await;
    gone(&secrets, "order-credential", "order's credential").await;
    gone(&config_maps, "kommerce-service-keys", "the service keys").await;
}
