//! What the operator's next controllers rely on, proven against the test control plane itself:
//! the real Deployment, ReplicaSet and garbage-collection controllers, the scheduler and a
//! simulated node (kwok) turn objects into running (simulated) pods; the API groups the
//! ShopService will own are served; Helm installs and removes a chart.

use std::time::Duration;

use crate::support::eventually;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

fn deployment(name: &str, replicas: i32, version: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": format!("kommerce/{name}:{version}"),
                        "env": [{ "name": "VERSION", "value": version }],
                    }],
                },
            },
        },
    })
}

/// The Deployment once it is Available with `replicas` updated, ready replicas.
async fn available(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually(&format!("{name} available"), WAIT, || async {
        let d = api.get(name).await.ok()?;
        let st = d.status.clone()?;
        let is_available = st
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True");
        (is_available
            && st.observed_generation == d.metadata.generation
            && st.updated_replicas == Some(replicas)
            && st.ready_replicas == Some(replicas)
            && st.replicas == Some(replicas))
        .then_some(d)
    })
    .await
}

async fn apply<K>(api: &Api<K>, name: &str, doc: &Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply("kommerce-tests").force(),
        &Patch::Apply(doc),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"))
}

#[tokio::test]
async fn a_deployment_becomes_available_and_a_template_change_rolls_out_a_new_replica_set() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "deploy").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    apply(&deployments, "web", &deployment("web", 2, "1")).await;
    available(&deployments, "web", 2).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let running = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(running.items.len(), 2);
    for pod in &running.items {
        let spec = pod.spec.as_ref().unwrap();
        assert!(spec.node_name.is_some(), "scheduled onto a node");
        assert_eq!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running")
        );
    }

    apply(&deployments, "web", &deployment("web", 2, "2")).await;
    available(&deployments, "web", 2).await;
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let sets = eventually("the old ReplicaSet scaled to 0", WAIT, || async {
        let sets = replica_sets.list(&ListParams::default()).await.ok()?.items;
        let scaled: Vec<(String, i32)> = sets
            .iter()
            .map(|rs| {
                let image = rs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| {
                        t.spec
                            .as_ref()
                            .map(|p| p.containers[0].image.clone().unwrap_or_default())
                    });
                (
                    image.unwrap_or_default(),
                    rs.status.as_ref().map_or(0, |s| s.replicas),
                )
            })
            .collect();
        (scaled.len() == 2 && scaled.iter().any(|(i, n)| i.ends_with(":1") && *n == 0))
            .then_some(scaled)
    })
    .await;
    assert!(
        sets.iter().any(|(i, n)| i.ends_with(":2") && *n == 2),
        "{sets:?}"
    );
}

#[tokio::test]
async fn an_owned_config_map_is_garbage_collected_with_its_owner() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "gc").await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = apply(
        &maps,
        "owner",
        &json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "owner" } }),
    )
    .await;
    apply(
        &maps,
        "owned",
        &json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "owned",
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                    "uid": owner.metadata.uid.unwrap(),
                }],
            },
            "data": { "k": "v" },
        }),
    )
    .await;
    maps.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the owned ConfigMap collected", WAIT, || async {
        matches!(maps.get_opt("owned").await, Ok(None)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn autoscalers_ingresses_and_disruption_budgets_are_served() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "groups").await;
    let hpa: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let created = apply(
        &hpa,
        "web",
        &json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": "web" },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                "minReplicas": 2, "maxReplicas": 5,
                "metrics": [{ "type": "Resource", "resource": {
                    "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } } }],
            },
        }),
    )
    .await;
    assert_eq!(created.spec.max_replicas, 5);

    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let created = apply(
        &ingresses,
        "shop",
        &json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": { "name": "shop" },
            "spec": { "rules": [{ "host": "shop.example", "http": { "paths": [{
                "path": "/api/v1/items", "pathType": "Prefix",
                "backend": { "service": { "name": "item", "port": { "number": 80 } } } }] } }] },
        }),
    )
    .await;
    assert_eq!(created.spec.unwrap().rules.unwrap().len(), 1);

    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    apply(
        &budgets,
        "web",
        &json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": { "name": "web" },
            "spec": { "minAvailable": 1, "selector": { "matchLabels": { "app": "web" } } },
        }),
    )
    .await;
    // The disruption controller runs: the budget gets a status.
    eventually("the budget observed", WAIT, || async {
        let st = budgets.get("web").await.ok()?.status?;
        (st.observed_generation == Some(1)).then_some(())
    })
    .await;

    // Server-side validation is the real one: a bad object is refused.
    let bad: Result<HorizontalPodAutoscaler, _> = hpa
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": { "name": "bad" },
                "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "web" }, "maxReplicas": 0 },
            }))
            .unwrap(),
        )
        .await;
    assert!(
        matches!(bad, Err(kube::Error::Api(ref e)) if e.code == 422),
        "{bad:?}"
    );
}

#[tokio::test]
async fn helm_installs_a_chart_until_ready_and_uninstalls_it() {
    let client: Client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "helm").await;
    let chart = std::env::temp_dir().join(crate::support::unique("kommerce-chart"));
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/deployment.yaml"),
        serde_json::to_string(&deployment("tiny", 1, "1")).unwrap(),
    )
    .unwrap();
    let chart_path = chart.to_str().unwrap();
    let out = tokio::task::spawn_blocking({
        let ns = ns.clone();
        let chart_path = chart_path.to_owned();
        move || {
            crate::support::helm(&[
                "install",
                "tiny",
                &chart_path,
                "--namespace",
                &ns,
                "--wait",
                "--timeout",
                "120s",
            ])
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "helm install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    available(&deployments, "tiny", 1).await;

    let out = tokio::task::spawn_blocking({
        let ns = ns.clone();
        move || crate::support::helm(&["uninstall", "tiny", "--namespace", &ns, "--wait"])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "helm uninstall: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the chart's Deployment removed", WAIT, || async {
        matches!(deployments.get_opt("tiny").await, Ok(None)).then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&chart);
}
