//! The controller shell every kind shares, written once: `run` drives a kube-rs `Controller`,
//! `reconcile` wraps each pass in its span, the finalizer, the metrics and the backoff, and
//! `error_policy` decides when to look again. A controller implements [`Reconciler`] — its
//! `apply` and `cleanup` stages — and keeps its decisions in pure functions of its `desired`
//! module (validate → desired state → conditions); the shell holds no decision of its own
//! beyond "an invalid spec waits for a change, anything else backs off".

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::Instrument as _;

use crate::backoff::Backoffs;
use crate::conditions::{self, Desired};
use crate::context::{Shared, drive, reconcile_span};
use crate::{MANAGER, metrics};

/// A status with conditions (every kind of ours has them).
pub trait Conditioned {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
}

/// What the shell needs to know about a controller's error.
pub trait ReconcileError: std::error::Error + Send + Sync + Sized + 'static {
    /// The `error` label of `kommerce_operator_reconcile_failures_total`.
    fn metric_label(&self) -> &'static str;
    /// Nothing changes until someone edits the spec: no requeue.
    fn awaits_a_spec_change(&self) -> bool;
    /// The finalizer's own failure (adding or removing it).
    fn finalizer(e: finalizer::Error<Self>) -> Self;
}

/// One controller: its kind, its names, and its two stages.
pub trait Reconciler: Send + Sync + 'static {
    type Resource: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + HasStatus<Status = Self::Status>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static;
    type Status: Conditioned + Serialize + Default + Clone + Send + Sync;
    type Error: ReconcileError;

    /// Label in metrics and logs.
    const CONTROLLER: &'static str;
    /// Held while something outside the API server may have to be removed; `None` when the
    /// kind makes nothing outside it (its children go by garbage collection).
    const FINALIZER: Option<&'static str>;

    fn shared(&self) -> &Shared;
    fn backoff(&self) -> &Backoffs<Self::Resource>;

    /// More watches: changes of children that should wake their owner (default: none).
    fn watches(
        controller: Controller<Self::Resource>,
        _shared: &Shared,
    ) -> Controller<Self::Resource> {
        controller
    }

    /// Brings the world in line with the spec; returns when to look again.
    fn apply(
        &self,
        obj: &Self::Resource,
        api: &Api<Self::Resource>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// Undoes what `apply` made outside the API server, before the finalizer goes.
    fn cleanup(
        &self,
        obj: &Self::Resource,
        api: &Api<Self::Resource>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;
}

/// Runs a controller until `stop` resolves; `make` builds its context around the controller's
/// cache of every object of its kind.
pub async fn run<R: Reconciler>(
    shared: Arc<Shared>,
    make: impl FnOnce(Arc<Shared>, Store<R::Resource>) -> R,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = R::watches(
        Controller::new(
            shared.watched::<R::Resource>(),
            watcher::Config::default().any_semantic(),
        ),
        &shared,
    );
    let store = controller.store();
    let ctx = Arc::new(make(shared, store));
    drive(
        R::CONTROLLER,
        controller
            .graceful_shutdown_on(stop)
            .run(reconcile::<R>, error_policy::<R>, ctx),
    )
    .await;
}

async fn reconcile<R: Reconciler>(obj: Arc<R::Resource>, ctx: Arc<R>) -> Result<Action, R::Error> {
    let span = reconcile_span(R::CONTROLLER, obj.as_ref());
    let started = Instant::now();
    let api: Api<R::Resource> = Api::namespaced(
        ctx.shared().client.clone(),
        &obj.namespace().unwrap_or_default(),
    );
    let this = obj.clone();
    let result = match R::FINALIZER {
        Some(name) => finalizer(&api, name, obj, |event| async {
            match event {
                finalizer::Event::Apply(o) => ctx.apply(&o, &api).await,
                finalizer::Event::Cleanup(o) => ctx.cleanup(&o, &api).await,
            }
        })
        .instrument(span)
        .await
        .map_err(|e| match e {
            finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
            other => R::Error::finalizer(other),
        }),
        // Being deleted: the garbage collector removes the children.
        None if obj.meta().deletion_timestamp.is_some() => Ok(Action::await_change()),
        None => ctx.apply(&obj, &api).instrument(span).await,
    };
    metrics::reconciled(
        R::CONTROLLER,
        started.elapsed(),
        result.as_ref().err().map(ReconcileError::metric_label),
    );
    if result.is_ok() {
        ctx.backoff().succeeded(&this);
    }
    result
}

#[allow(clippy::needless_pass_by_value)] // the signature Controller::run expects
fn error_policy<R: Reconciler>(obj: Arc<R::Resource>, error: &R::Error, ctx: Arc<R>) -> Action {
    tracing::warn!(controller = R::CONTROLLER, namespace = obj.namespace(), name = %obj.name_any(), error = %error, "reconcile failed");
    if error.awaits_a_spec_change() {
        Action::await_change()
    } else {
        Action::requeue(ctx.backoff().failed(&obj))
    }
}

/// The API server's clock is not ours to read; conditions carry this process's.
pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// Writes `status` by server-side apply with the operator's field manager.
pub async fn patch_status<K>(api: &Api<K>, obj: &K, status: &K::Status) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + HasStatus + Clone + DeserializeOwned + Debug,
    K::Status: Serialize,
{
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// The object's status with `desired` conditions merged in, everything else carried over.
pub fn with_conditions<K>(obj: &K, desired: &[Desired]) -> K::Status
where
    K: Resource + HasStatus,
    K::Status: Conditioned + Default + Clone,
{
    let mut status = obj.status().cloned().unwrap_or_default();
    let merged = conditions::merge(status.conditions(), desired, obj.meta().generation, &now());
    *status.conditions_mut() = merged;
    status
}

impl Conditioned for kommerce_crds::SagaTopicStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl Conditioned for kommerce_crds::ShopServiceStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl Conditioned for kommerce_crds::StockPoolStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}
