//! Leader election on a real API server: one holder at a time, hand-over on release, take-over
//! after expiry.

use std::time::Duration;

use crate::support::eventually;
use k8s_openapi::api::coordination::v1::Lease;
use kommerce_operator::leader::LeaseLock;
use kube::Api;

#[tokio::test]
async fn one_replica_leads_and_the_other_takes_over_on_release_or_expiry() {
    let client = crate::support::client().await;
    crate::support::install_crds(&client).await;
    let ns = crate::support::namespace(&client, "lease").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let a = LeaseLock::with(
        leases.clone(),
        "kommerce-operator",
        "replica-a",
        Duration::from_secs(2),
    );
    let b = LeaseLock::with(
        leases.clone(),
        "kommerce-operator",
        "replica-b",
        Duration::from_secs(2),
    );

    let held = a
        .clone()
        .acquire(std::future::pending())
        .await
        .unwrap()
        .expect("a leads");
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b must not lead while a does"
    );
    assert!(a.try_acquire_or_renew().await.unwrap(), "a renews");
    let lease = leases.get("kommerce-operator").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(lease.lease_duration_seconds, Some(2));

    // Graceful hand-over: released, b takes it at once.
    held.release().await;
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "b takes a released lease"
    );
    let lease = leases.get("kommerce-operator").await.unwrap().spec.unwrap();
    assert_eq!(
        (lease.holder_identity.as_deref(), lease.lease_transitions),
        (Some("replica-b"), Some(1))
    );
    let b_renewed = lease.renew_time.clone().unwrap().0;

    // b stops renewing (crashed): a takes over once the lease expired, not before.
    assert!(!a.try_acquire_or_renew().await.unwrap());
    eventually(
        "a takes over the expired lease",
        Duration::from_secs(10),
        || async { a.try_acquire_or_renew().await.unwrap().then_some(()) },
    )
    .await;
    let lease = leases.get("kommerce-operator").await.unwrap().spec.unwrap();
    assert_eq!(
        (lease.holder_identity.as_deref(), lease.lease_transitions),
        (Some("replica-a"), Some(2))
    );
    // a took over only after b's lease had run out: a's acquire time is at least the lease
    // duration after b's last renewal, which is what "not before" means.
    let acquired = lease.acquire_time.unwrap().0;
    assert!(
        acquired >= b_renewed + jiff::SignedDuration::from_secs(2),
        "a took over at {acquired}, b last renewed at {b_renewed}"
    );
}
