//! The `kommerce-operator` binary as a Deployment would run it: leader election on a Lease,
//! `/healthz` and `/metrics`, the controllers, and a clean SIGTERM that hands the Lease back.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{condition, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use kommerce_crds::SagaTopic;
use kommerce_crds::conditions::READY;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
#[allow(clippy::too_many_lines)] // one process's life, step by step
async fn the_binary_leads_reconciles_serves_metrics_and_releases_its_lease_on_sigterm() {
    let client = crate::support::client().await;
    crate::support::install_crds(&client).await;
    let ns = crate::support::namespace(&client, "bin").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // As in a cluster: the operator's ServiceAccount with the committed ClusterRole.
    let user = crate::support::operator_account(&client, &ns).await;
    let kubeconfig = crate::support::kubeconfig_as(&user, &std::env::temp_dir());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kommerce-operator"))
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("RUST_LOG")
        .args([
            "--namespace",
            &ns,
            "--lease-namespace",
            &ns,
            "--identity",
            "replica-1",
            "--lease-duration",
            "5s",
        ])
        .args([
            "--kafka-bootstrap",
            crate::support::KAFKA,
            "--redis-url",
            crate::support::REDIS,
        ])
        .args([
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--log-filter",
            "warn",
        ])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("operator binary starts");
    let base = format!("http://127.0.0.1:{port}");
    eventually("/healthz", WAIT, || async {
        reqwest::get(format!("{base}/healthz"))
            .await
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .await;

    let api: Api<SagaTopic> = Api::namespaced(client.clone(), &ns);
    let topic = crate::support::unique("bin");
    let doc = json!({
        "apiVersion": "kommerce.dev/v1alpha1", "kind": "SagaTopic", "metadata": { "name": "events" },
        "spec": { "topicName": topic, "partitions": 1, "deadLetter": false, "deletionPolicy": "Delete" },
    });
    api.patch(
        "events",
        &PatchParams::apply("kommerce-tests"),
        &Patch::Apply(doc),
    )
    .await
    .unwrap();
    eventually("Ready", WAIT, || async {
        let status = api.get("events").await.ok()?.status?;
        (condition(&status.conditions, READY)?.0 == "True").then_some(())
    })
    .await;

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let holder = leases
        .get("kommerce-operator")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    assert_eq!(holder.as_deref(), Some("replica-1"));
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"kommerce_operator_leader{identity="replica-1"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"kommerce_operator_reconciles_total{controller="sagatopic"}"#),
        "{metrics}"
    );

    // Clean up through the operator while it runs, then stop it.
    api.delete("events", &DeleteParams::default())
        .await
        .unwrap();
    eventually("deleted", WAIT, || async {
        api.get_opt("events").await.ok()?.is_none().then_some(())
    })
    .await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let lease = leases.get("kommerce-operator").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity, None, "the lease is handed back");
}
