//! SagaTopic against the real API server and the real Kafka broker (scripts/deps.sh).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{KAFKA, condition, eventually};
use k8s_openapi::api::events::v1::Event;
use kommerce_crds::conditions::{DEGRADED, DELETION_BLOCKED, READY, RESOURCE_CONFLICT};
use kommerce_crds::{SagaTopic, reasons};
use kommerce_operator::kafka_wire::{self, Change};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// What the broker itself says about a topic: (partitions, config), `None` if it does not exist.
/// An independent admin client, not the operator's.
async fn on_broker(topic: &str) -> Option<(usize, BTreeMap<String, String>)> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", KAFKA)
        .create()
        .expect("admin client");
    let name = topic.to_owned();
    let (admin, partitions) = tokio::task::spawn_blocking(move || {
        let md = admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(5))
            .expect("metadata");
        let p = md
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .map(|t| t.partitions().len());
        (admin, p)
    })
    .await
    .expect("metadata task");
    let partitions = partitions?;
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe configs");
    let config = described
        .into_iter()
        .next()
        .and_then(Result::ok)
        .map(|r| {
            r.entries
                .into_iter()
                .filter_map(|e| e.value.map(|v| (e.name, v)))
                .collect()
        })
        .unwrap_or_default();
    Some((partitions, config))
}

fn saga_topic(name: &str, topic: &str, partitions: i32, policy: &str) -> serde_json::Value {
    json!({
        "apiVersion": "kommerce.dev/v1alpha1", "kind": "SagaTopic",
        "metadata": { "name": name },
        "spec": {
            "topicName": topic, "partitions": partitions, "deletionPolicy": policy,
            "config": { "retention.ms": "3600000", "cleanup.policy": "delete" },
        },
    })
}

async fn ready(api: &Api<SagaTopic>, name: &str) -> SagaTopic {
    eventually(&format!("{name} Ready"), WAIT, || async {
        let st = api.get(name).await.ok()?;
        let status = st.status.clone()?;
        (condition(&status.conditions, READY)? == ("True".into(), reasons::RECONCILED.into())
            && status.observed_generation == st.metadata.generation)
            .then_some(st)
    })
    .await
}

async fn events(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&kube::api::ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one resource's life, step by step
async fn a_saga_topic_is_created_kept_in_shape_and_deleted_with_its_policy() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "saga").await;
    let _operator = crate::support::start_operator(&client, crate::support::settings(&ns)).await;
    let http =
        kommerce_operator::http::serve("127.0.0.1:0".parse().unwrap(), std::future::pending())
            .await
            .unwrap();
    let api: Api<SagaTopic> = Api::namespaced(client.clone(), &ns);
    let ssa = PatchParams::apply("kommerce-tests");
    let topic = crate::support::unique("payments");
    let dlq = format!("{topic}.dlq");

    api.patch(
        "payments",
        &ssa,
        &Patch::Apply(saga_topic("payments", &topic, 3, "Delete")),
    )
    .await
    .unwrap();
    let st = ready(&api, "payments").await;

    // The broker has both topics with the partitions and the config.
    for name in [&topic, &dlq] {
        let (partitions, config) = on_broker(name)
            .await
            .unwrap_or_else(|| panic!("{name} exists"));
        assert_eq!(partitions, 3, "{name}");
        assert_eq!(
            config.get("retention.ms").map(String::as_str),
            Some("3600000"),
            "{name}"
        );
        assert_eq!(
            config.get("cleanup.policy").map(String::as_str),
            Some("delete"),
            "{name}"
        );
    }
    let status = st.status.clone().unwrap();
    assert_eq!(status.topic_name.as_deref(), Some(topic.as_str()));
    assert_eq!(
        status
            .topics
            .iter()
            .map(|t| (t.name.as_str(), t.partitions))
            .collect::<Vec<_>>(),
        [(topic.as_str(), 3), (dlq.as_str(), 3)]
    );
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == st.metadata.generation)
    );
    assert!(
        events(&client, &ns, "payments")
            .await
            .iter()
            .any(|(r, n)| r == reasons::TOPIC_CREATED && n.contains(&dlq))
    );

    // kubectl shows the printer columns and `kubectl wait` understands the conditions.
    let out = crate::support::kubectl(&["get", "sagatopics", "-n", &ns]);
    let table = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TOPIC",
            "PARTITIONS",
            "DLQ",
            "READY",
            "REASON",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..6],
        [
            "payments",
            topic.as_str(),
            "3",
            "true",
            "True",
            "Reconciled"
        ],
        "{table}"
    );
    let out = crate::support::kubectl(&[
        "wait",
        "-n",
        &ns,
        "--for=condition=Ready",
        "sagatopic/payments",
        "--timeout=20s",
    ]);
    assert!(
        out.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));

    // A config changed behind the operator's back is set back and reported.
    kafka_wire::alter_topic_config(
        KAFKA,
        &topic,
        &[Change::Set("retention.ms".into(), "1000".into())],
        Duration::from_secs(5),
    )
    .await
    .expect("out-of-band change");
    let drifted = eventually("drift recorded", WAIT, || async {
        let st = api.get("payments").await.ok()?;
        let drift = st.status?.drift;
        drift
            .into_iter()
            .find(|d| d.topic == topic && d.key == "retention.ms")
    })
    .await;
    assert_eq!(
        (drifted.desired.as_str(), drifted.observed.as_deref()),
        ("3600000", Some("1000"))
    );
    let (_, config) = on_broker(&topic).await.unwrap();
    assert_eq!(
        config.get("retention.ms").map(String::as_str),
        Some("3600000")
    );
    assert!(events(&client, &ns, "payments").await.iter().any(|(r, n)| r
        == reasons::DRIFT_CORRECTED
        && n.contains("retention.ms=3600000 (was 1000)")));

    // The reconciles were counted.
    let metrics = reqwest::get(format!("http://{}/metrics", http.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"kommerce_operator_reconciles_total{controller="sagatopic"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("kommerce_operator_reconcile_duration_seconds_bucket"),
        "{metrics}"
    );

    // deletionPolicy Delete: the topics go, then the finalizer releases the resource.
    api.delete("payments", &DeleteParams::default())
        .await
        .unwrap();
    eventually("SagaTopic gone", WAIT, || async {
        api.get_opt("payments").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(on_broker(&topic).await.is_none(), "{topic} deleted");
    assert!(on_broker(&dlq).await.is_none(), "{dlq} deleted");
}

#[tokio::test]
async fn orphan_keeps_the_topic_and_a_second_claimant_gets_resource_conflict() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "saga").await;
    let _operator = crate::support::start_operator(&client, crate::support::settings(&ns)).await;
    let api: Api<SagaTopic> = Api::namespaced(client.clone(), &ns);
    let ssa = PatchParams::apply("kommerce-tests");
    let topic = crate::support::unique("orders");

    api.patch(
        "orders",
        &ssa,
        &Patch::Apply(saga_topic("orders", &topic, 2, "Orphan")),
    )
    .await
    .unwrap();
    ready(&api, "orders").await;
    // A younger SagaTopic for the same topic, asking for other partitions and config.
    let mut rival = saga_topic("orders-again", &topic, 4, "Delete");
    rival["spec"]["config"]["retention.ms"] = json!("5");
    api.patch("orders-again", &ssa, &Patch::Apply(rival))
        .await
        .unwrap();
    let conflicted = eventually("ResourceConflict", WAIT, || async {
        let status = api.get("orders-again").await.ok()?.status?;
        (condition(&status.conditions, RESOURCE_CONFLICT)?
            == ("True".into(), reasons::CLAIMED_BY_OTHER.into()))
            .then_some(status)
    })
    .await;
    assert_eq!(
        condition(&conflicted.conditions, READY).map(|c| c.0),
        Some("False".into())
    );
    assert!(
        conflicted
            .conditions
            .iter()
            .any(|c| c.message.contains(&format!("{ns}/orders")))
    );
    // ... and it was not applied.
    let (partitions, config) = on_broker(&topic).await.unwrap();
    assert_eq!(
        (partitions, config.get("retention.ms").map(String::as_str)),
        (2, Some("3600000"))
    );
    assert_eq!(
        condition(
            &api.get("orders").await.unwrap().status.unwrap().conditions,
            READY
        )
        .map(|c| c.0),
        Some("True".into())
    );

    // Deleting the younger one must not touch the older one's topic, despite its Delete policy.
    api.delete("orders-again", &DeleteParams::default())
        .await
        .unwrap();
    eventually("rival gone", WAIT, || async {
        api.get_opt("orders-again")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(on_broker(&topic).await.is_some());

    // deletionPolicy Orphan: the resource goes, the topics stay.
    api.delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    eventually("SagaTopic gone", WAIT, || async {
        api.get_opt("orders").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(on_broker(&topic).await.map(|t| t.0), Some(2));
    assert_eq!(
        on_broker(&format!("{topic}.dlq")).await.map(|t| t.0),
        Some(2)
    );
}

#[tokio::test]
async fn raising_partitions_adds_them_and_a_refused_config_is_reported() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "saga").await;
    let _operator = crate::support::start_operator(&client, crate::support::settings(&ns)).await;
    let api: Api<SagaTopic> = Api::namespaced(client.clone(), &ns);
    let ssa = PatchParams::apply("kommerce-tests");
    let topic = crate::support::unique("grow");
    let mut doc = saga_topic("grow", &topic, 1, "Delete");
    doc["spec"]["deadLetter"] = json!(false);
    api.patch("grow", &ssa, &Patch::Apply(doc.clone()))
        .await
        .unwrap();
    ready(&api, "grow").await;
    assert_eq!(on_broker(&topic).await.map(|t| t.0), Some(1));

    doc["spec"]["partitions"] = json!(3);
    api.patch("grow", &ssa, &Patch::Apply(doc.clone()))
        .await
        .unwrap();
    let grown = ready(&api, "grow").await;
    let reported: Vec<i32> = grown
        .status
        .map(|s| s.topics.iter().map(|t| t.partitions).collect())
        .unwrap_or_default();
    assert_eq!(reported, vec![3], "status reports what the broker has");
    assert_eq!(on_broker(&topic).await.map(|t| t.0), Some(3));

    // A value the broker refuses (the CRD's own rules catch malformed numbers and policies
    // before that): the resource says so, names the topic and the broker's reason, and the
    // topic keeps its last good config.
    doc["spec"]["config"]["compression.type"] = json!("zip");
    api.patch("grow", &ssa, &Patch::Apply(doc)).await.unwrap();
    let status = eventually("Degraded after a refused config", WAIT, || async {
        let st = api.get("grow").await.ok()?;
        let status = st.status?;
        (condition(&status.conditions, DEGRADED)?
            == ("True".into(), reasons::BROKER_REJECTED.into()))
            .then_some(status)
    })
    .await;
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == DEGRADED)
        .unwrap();
    assert!(
        degraded.message.contains(&topic) && degraded.message.contains("INVALID_CONFIG"),
        "{}",
        degraded.message
    );
    assert_eq!(
        condition(&status.conditions, READY).map(|c| c.0),
        Some("False".into())
    );
    let (partitions, config) = on_broker(&topic).await.unwrap();
    assert_eq!(partitions, 3);
    assert_eq!(
        config.get("retention.ms").map(String::as_str),
        Some("3600000")
    );
    assert_ne!(
        config.get("compression.type").map(String::as_str),
        Some("zip")
    );
    api.delete("grow", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_degrades_the_topic_and_blocks_its_deletion() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "saga").await;
    let _operator = crate::support::start_operator(&client, crate::support::settings(&ns)).await;
    let api: Api<SagaTopic> = Api::namespaced(client.clone(), &ns);
    let mut doc = saga_topic("nowhere", &crate::support::unique("nowhere"), 1, "Delete");
    doc["spec"]["bootstrapServers"] = json!("127.0.0.1:1");
    api.patch(
        "nowhere",
        &PatchParams::apply("kommerce-tests"),
        &Patch::Apply(doc),
    )
    .await
    .unwrap();
    let status = eventually("Degraded", WAIT, || async {
        let status = api.get("nowhere").await.ok()?.status?;
        (condition(&status.conditions, DEGRADED)?
            == ("True".into(), reasons::BROKER_UNREACHABLE.into()))
            .then_some(status)
    })
    .await;
    assert_eq!(
        condition(&status.conditions, READY),
        Some(("False".into(), reasons::BROKER_UNREACHABLE.into()))
    );
    // deletionPolicy Delete with the broker unreachable: the finalizer holds the resource and
    // says why; once the broker is reachable the deletion completes.
    api.delete("nowhere", &DeleteParams::default())
        .await
        .unwrap();
    let blocked = eventually("DeletionBlocked", WAIT, || async {
        let status = api.get("nowhere").await.ok()?.status?;
        (condition(&status.conditions, DELETION_BLOCKED)?
            == ("True".into(), reasons::DELETE_FAILED.into()))
            .then_some(status)
    })
    .await;
    assert!(
        blocked
            .conditions
            .iter()
            .any(|c| c.type_ == DELETION_BLOCKED && c.message.contains("broker unreachable"))
    );
    let fix = json!({ "spec": { "bootstrapServers": KAFKA } });
    api.patch("nowhere", &PatchParams::default(), &Patch::Merge(fix))
        .await
        .unwrap();
    eventually("gone", WAIT, || async {
        api.get_opt("nowhere").await.ok()?.is_none().then_some(())
    })
    .await;
}
