//! The generated CRDs against the real API server: they install, and the CEL rules reject what
//! they should at admission.

use kommerce_crds::{SagaTopic, StockPool};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}", s.code, s.message),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn cel_rules_reject_a_partition_decrease_a_topic_rename_and_bad_configs() {
    let client = crate::support::client().await;
    crate::support::install_crds(&client).await;
    let ns = crate::support::namespace(&client, "crd").await;
    let api: Api<SagaTopic> = Api::namespaced(client.clone(), &ns);
    let ssa = PatchParams::apply("kommerce-tests");
    let topic = crate::support::unique("cel");
    let doc = |partitions: i32, name: &str, rf: i32| {
        json!({
            "apiVersion": "kommerce.dev/v1alpha1", "kind": "SagaTopic",
            "metadata": { "name": "orders" },
            "spec": { "topicName": name, "partitions": partitions, "replicationFactor": rf,
                      "config": { "retention.ms": "60000" } },
        })
    };
    let created = api
        .patch("orders", &ssa, &Patch::Apply(doc(3, &topic, 1)))
        .await
        .expect("valid SagaTopic is admitted");
    // Defaults are applied by the API server from the schema.
    assert!(created.spec.dead_letter);
    assert_eq!(
        created.spec.deletion_policy,
        kommerce_crds::DeletionPolicy::Orphan
    );

    let err = api
        .patch("orders", &ssa, &Patch::Apply(doc(2, &topic, 1)))
        .await
        .expect_err("decrease rejected");
    assert!(
        api_error(&err).contains("partitions may only grow"),
        "{}",
        api_error(&err)
    );
    let err = api
        .patch("orders", &ssa, &Patch::Apply(doc(3, "renamed", 1)))
        .await
        .expect_err("rename rejected");
    assert!(
        api_error(&err).contains("topicName is immutable"),
        "{}",
        api_error(&err)
    );
    let err = api
        .patch("orders", &ssa, &Patch::Apply(doc(3, &topic, 2)))
        .await
        .expect_err("rf change rejected");
    assert!(
        api_error(&err).contains("replicationFactor is immutable"),
        "{}",
        api_error(&err)
    );
    // Growing is fine.
    let grown = api
        .patch("orders", &ssa, &Patch::Apply(doc(5, &topic, 1)))
        .await
        .expect("increase admitted");
    assert_eq!(grown.spec.partitions, 5);

    let bad = json!({
        "apiVersion": "kommerce.dev/v1alpha1", "kind": "SagaTopic", "metadata": { "name": "bad" },
        "spec": { "partitions": 1, "config": { "cleanup.policy": "sometimes", "retention.ms": "a week" } },
    });
    let err = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(bad).unwrap(),
        )
        .await
        .expect_err("bad config rejected");
    let msg = api_error(&err);
    assert!(
        msg.contains("cleanup.policy must be") && msg.contains("must be integers"),
        "{msg}"
    );

    api.delete("orders", &kube::api::DeleteParams::default())
        .await
        .unwrap();

    let pools: Api<StockPool> = Api::namespaced(client, &ns);
    let bad_pool = json!({
        "apiVersion": "kommerce.dev/v1alpha1", "kind": "StockPool", "metadata": { "name": "default" },
        "spec": { "strategy": "spinLock", "spinLock": { "backoffBaseMs": 100, "backoffMaxMs": 10 } },
    });
    let err = pools
        .create(
            &PostParams::default(),
            &serde_json::from_value(bad_pool).unwrap(),
        )
        .await
        .expect_err("rejected");
    assert!(
        api_error(&err).contains("backoffBaseMs must not exceed backoffMaxMs"),
        "{}",
        api_error(&err)
    );
    let unknown_strategy = json!({
        "apiVersion": "kommerce.dev/v1alpha1", "kind": "StockPool", "metadata": { "name": "default" },
        "spec": { "strategy": "optimism" },
    });
    let err = pools
        .patch("default", &ssa, &Patch::Apply(unknown_strategy))
        .await
        .expect_err("enum enforced");
    assert!(api_error(&err).contains("optimism"), "{}", api_error(&err));
}

#[tokio::test]
async fn kubectl_knows_the_kinds_by_short_name_and_category() {
    let client = crate::support::client().await;
    crate::support::install_crds(&client).await;
    let out = crate::support::kubectl(&["api-resources", "--api-group=kommerce.dev", "-o", "wide"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (kind, short) in [
        ("SagaTopic", "sgt"),
        ("StockPool", "spool"),
        ("ShopService", "shopsvc"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(kind) && l.contains(short) && l.contains("kommerce")),
            "{kind}/{short} in:\n{text}"
        );
    }
}
