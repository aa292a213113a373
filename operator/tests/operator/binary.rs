//! The `kommerce-operator` binary as a Deployment would run it: leader election on a Lease,
//! `/healthz` and `/metrics`, the controllers, and a clean SIGTERM that hands the Lease back.

use std::process::Stdio;

use kommerce_kit::testing::{ReservedPort, reserve_port};
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
    let reserved = reserve_port();
    let port = reserved.port();
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

/// One operator binary, running as the operator's ServiceAccount, on a port of its own.
async fn replica(
    ns: &str,
    identity: &str,
    kubeconfig: &std::path::Path,
) -> (tokio::process::Child, String, ReservedPort) {
    // Held (not listening) until the test ends: nobody else gets the port the binary binds.
    let reserved = reserve_port();
    let port = reserved.port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kommerce-operator"))
        .env("KUBECONFIG", kubeconfig)
        .env_remove("RUST_LOG")
        .args([
            "--namespace",
            ns,
            "--lease-namespace",
            ns,
            "--identity",
            identity,
        ])
        .args([
            "--lease-duration",
            "4s",
            "--kafka-bootstrap",
            crate::support::KAFKA,
        ])
        .args(["--redis-url", crate::support::REDIS, "--log-filter", "warn"])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("operator binary starts");
    let base = format!("http://127.0.0.1:{port}");
    eventually(&format!("{identity} /healthz"), WAIT, || async {
        reqwest::get(format!("{base}/healthz"))
            .await
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .await;
    (child, base, reserved)
}

/// Two replicas as the manifests run them: one leads and reconciles; when it stops (SIGTERM,
/// a rolling update), the other takes the Lease and reconciles the next change.
#[tokio::test]
async fn two_replicas_one_leads_and_the_other_takes_over_when_it_stops() {
    use kommerce_crds::ShopService;
    let client = crate::support::client().await;
    crate::support::install_crds(&client).await;
    let ns = crate::support::namespace(&client, "ha").await;
    let user = crate::support::operator_account(&client, &ns).await;
    let kubeconfig = crate::support::kubeconfig_as(&user, &std::env::temp_dir());
    let (mut first, _, _port_a) = replica(&ns, "replica-a", &kubeconfig).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let holder = || async {
        leases
            .get_opt("kommerce-operator")
            .await
            .ok()??
            .spec?
            .holder_identity
    };
    eventually("replica-a leads", WAIT, || async {
        (holder().await? == "replica-a").then_some(())
    })
    .await;
    let (_second, _, _port_b) = replica(&ns, "replica-b", &kubeconfig).await;

    let api: Api<ShopService> = Api::namespaced(client.clone(), &ns);
    let doc = |replicas: i32| {
        json!({
            "apiVersion": "kommerce.dev/v1alpha1", "kind": "ShopService", "metadata": { "name": "order" },
            "spec": { "component": "order", "image": "kommerce/order:1", "replicas": replicas },
        })
    };
    let ready_with = |replicas: i32| {
        let api = api.clone();
        async move {
            eventually(&format!("order ready with {replicas}"), WAIT, || async {
                let st = api.get("order").await.ok()?.status?;
                (condition(&st.conditions, READY)?.0 == "True"
                    && st.ready_replicas == Some(replicas))
                .then_some(())
            })
            .await;
        }
    };
    let ssa = PatchParams::apply("kommerce-tests");
    api.patch("order", &ssa, &Patch::Apply(doc(1)))
        .await
        .unwrap();
    ready_with(1).await;
    assert_eq!(
        holder().await.as_deref(),
        Some("replica-a"),
        "the standby only waits"
    );

    let pid = nix::unistd::Pid::from_raw(i32::try_from(first.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(WAIT, first.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status}");
    eventually("replica-b leads", WAIT, || async {
        (holder().await? == "replica-b").then_some(())
    })
    .await;
    api.patch("order", &ssa, &Patch::Apply(doc(2)))
        .await
        .unwrap();
    ready_with(2).await;
}
