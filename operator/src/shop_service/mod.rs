//! The ShopService controller: one Kommerce microservice's Deployment, Service, ConfigMap,
//! NetworkPolicy and, when the spec asks for them, Ingress, HPA and PDB — each applied by
//! server-side apply with the operator's field manager and owned by the ShopService (deleting it
//! garbage-collects them). A config change of a key the service applies live reaches the pods
//! through the mounted ConfigMap; any other rolls the Deployment through the restart-hash
//! annotation of its pod template. The status is read off the real Deployment.
//!
//! The shell is [`crate::reconciler`]; every decision is a pure function of [`desired`].

pub mod credential;
pub mod desired;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kommerce_crds::conditions::RECONCILIATION_PAUSED;
use kommerce_crds::{ShopService, ShopServiceStatus, reasons};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::desired::{Invalid, Validated};
use crate::MANAGER;
use crate::backoff::Backoffs;
use crate::conditions::{self, Desired};
use crate::context::Shared;
use crate::reconciler::{self, ReconcileError, Reconciler};

pub const CONTROLLER: &str = "shopservice";
/// While a rollout is under way the Deployment's changes wake the controller; this is the
/// safety net.
const RECHECK_ROLLING: Duration = Duration::from_secs(10);
const RECHECK_SETTLED: Duration = Duration::from_secs(300);

/// One variant per stage that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] Invalid),
    #[error("applying the {kind}: {source}")]
    Apply {
        kind: &'static str,
        source: kube::Error,
    },
    #[error("deleting the {kind}: {source}")]
    Delete {
        kind: &'static str,
        source: kube::Error,
    },
    #[error(
        "the Secret {0} holds no Ed25519 private key under `private`; delete it and a new key pair is made"
    )]
    Credential(String),
    #[error("reading the Deployment: {0}")]
    ReadDeployment(#[source] kube::Error),
    #[error("patching status: {0}")]
    PatchStatus(#[source] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "invalid_spec",
            Self::Apply { .. } => "apply_child",
            Self::Delete { .. } => "delete_child",
            Self::Credential(_) => "credential",
            Self::ReadDeployment(_) => "read_deployment",
            Self::PatchStatus(_) => "patch_status",
            Self::Finalizer(_) => "finalizer",
        }
    }

    fn awaits_a_spec_change(&self) -> bool {
        matches!(self, Self::InvalidSpec(_))
    }

    fn finalizer(e: finalizer::Error<Self>) -> Self {
        Self::Finalizer(Box::new(e))
    }
}

pub struct Context {
    pub shared: Arc<Shared>,
    backoff: Backoffs<ShopService>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// Runs the controller until `stop` resolves.
pub async fn run(shared: Arc<Shared>, stop: impl Future<Output = ()> + Send + Sync + 'static) {
    reconciler::run(
        shared,
        |shared, _store| Context {
            shared,
            backoff: Backoffs::default(),
        },
        stop,
    )
    .await;
}

impl Reconciler for Context {
    type Resource = ShopService;
    type Status = ShopServiceStatus;
    type Error = Error;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: Option<&'static str> = None;

    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn backoff(&self) -> &Backoffs<ShopService> {
        &self.backoff
    }

    /// A Deployment's progress wakes its ShopService.
    fn watches(controller: Controller<ShopService>, shared: &Shared) -> Controller<ShopService> {
        controller.owns(
            shared.watched::<Deployment>(),
            watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}")),
        )
    }

    async fn apply(&self, ss: &ShopService, api: &Api<ShopService>) -> Result<Action, Error> {
        apply(ss, self, api).await
    }

    async fn cleanup(&self, _ss: &ShopService, _api: &Api<ShopService>) -> Result<Action, Error> {
        Ok(Action::await_change())
    }
}

async fn patch_status(
    api: &Api<ShopService>,
    ss: &ShopService,
    status: &ShopServiceStatus,
) -> Result<(), Error> {
    reconciler::patch_status(api, ss, status)
        .await
        .map_err(Error::PatchStatus)
}

/// The API of a child kind in the ShopService's namespace.
fn child_api<K>(ctx: &Context, ss: &ShopService) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    Api::namespaced(
        ctx.shared.client.clone(),
        &ss.namespace().unwrap_or_default(),
    )
}

/// Server-side apply of one child with the operator's field manager.
async fn ssa<K>(ctx: &Context, ss: &ShopService, child: &K, kind: &'static str) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    child_api::<K>(ctx, ss)
        .patch(
            &ss.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(child),
        )
        .await
        .map(|_| ())
        .map_err(|source| Error::Apply { kind, source })
}

/// Deletes a child the spec no longer wants; returns whether there was one.
async fn remove<K>(ctx: &Context, ss: &ShopService, kind: &'static str) -> Result<bool, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    match child_api::<K>(ctx, ss)
        .delete(&ss.name_any(), &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(source) => Err(Error::Delete { kind, source }),
    }
}

/// Writes a failure into the status (best effort: the reconcile error is what gets retried).
async fn report_failure(api: &Api<ShopService>, ss: &ShopService, error: Error) -> Error {
    let desired = match &error {
        Error::InvalidSpec(invalid) => conditions::invalid_as(reasons::INVALID_CONFIG, invalid),
        Error::Apply { .. } | Error::Delete { .. } | Error::Credential(_) => {
            conditions::failed(reasons::DEPLOYMENT_FAILED, &error.to_string())
        }
        _ => return error,
    };
    if let Err(e) = patch_status(api, ss, &reconciler::with_conditions(ss, &desired)).await {
        tracing::warn!(error = %e, "cannot write the failure into the status");
    }
    error
}

async fn apply(ss: &ShopService, ctx: &Context, api: &Api<ShopService>) -> Result<Action, Error> {
    if desired::is_paused(ss) {
        let mut status = ss.status.clone().unwrap_or_default();
        for d in desired::conditions_paused() {
            status.conditions = conditions::upsert(
                &status.conditions,
                &d,
                ss.metadata.generation,
                &reconciler::now(),
            );
        }
        patch_status(api, ss, &status).await?;
        return Ok(Action::await_change());
    }
    let v = match desired::validate(ss) {
        Ok(v) => v,
        Err(invalid) => return Err(report_failure(api, ss, Error::InvalidSpec(invalid)).await),
    };
    if let Err(e) = apply_children(ss, ctx, &v).await {
        return Err(report_failure(api, ss, e).await);
    }
    let deployment = child_api::<Deployment>(ctx, ss)
        .get_opt(&ss.name_any())
        .await
        .map_err(Error::ReadDeployment)?;
    let observed = desired::observe(deployment.as_ref());
    let mut conds = observed.conditions.clone();
    conds.push(Desired::new(
        RECONCILIATION_PAUSED,
        false,
        reasons::RECONCILED,
        "",
    ));
    let previous = ss.status.clone().unwrap_or_default();
    let status = ShopServiceStatus {
        conditions: conditions::merge(
            &previous.conditions,
            &conds,
            ss.metadata.generation,
            &reconciler::now(),
        ),
        observed_generation: ss.metadata.generation,
        replicas: observed.replicas,
        ready_replicas: observed.ready_replicas,
        last_config_change: desired::config_change(&previous, &v),
        config_hash: Some(v.config_hash.clone()),
        restart_hash: Some(v.restart_hash.clone()),
        url: desired::url(ss),
    };
    patch_status(api, ss, &status).await?;
    Ok(Action::requeue(if observed.settled {
        RECHECK_SETTLED
    } else {
        RECHECK_ROLLING
    }))
}

/// Applies every wanted child and deletes the unwanted ones.
async fn apply_children(ss: &ShopService, ctx: &Context, v: &Validated) -> Result<(), Error> {
    let settings = &ctx.shared.settings;
    let public = credential::ensure(ctx, ss).await?;
    ssa(ctx, ss, &desired::config_map(ss, v), "ConfigMap").await?;
    ssa(ctx, ss, &desired::service(ss), "Service").await?;
    ssa(
        ctx,
        ss,
        &desired::network_policy(ss, &settings.ingress_namespace),
        "NetworkPolicy",
    )
    .await?;
    ssa(
        ctx,
        ss,
        &desired::deployment(ss, v, &public, settings.progress_deadline),
        "Deployment",
    )
    .await?;
    let mut deleted = Vec::new();
    match desired::ingress(ss, settings.ingress_class.as_deref()) {
        Some(i) => ssa(ctx, ss, &i, "Ingress").await?,
        None if remove::<Ingress>(ctx, ss, "Ingress").await? => deleted.push("Ingress"),
        None => {}
    }
    match desired::hpa(ss) {
        Some(h) => ssa(ctx, ss, &h, "HorizontalPodAutoscaler").await?,
        None if remove::<HorizontalPodAutoscaler>(ctx, ss, "HorizontalPodAutoscaler").await? => {
            deleted.push("HorizontalPodAutoscaler");
        }
        None => {}
    }
    match desired::pdb(ss) {
        Some(p) => ssa(ctx, ss, &p, "PodDisruptionBudget").await?,
        None if remove::<PodDisruptionBudget>(ctx, ss, "PodDisruptionBudget").await? => {
            deleted.push("PodDisruptionBudget");
        }
        None => {}
    }
    if !deleted.is_empty() {
        ctx.shared
            .event(
                ss,
                EventType::Normal,
                reasons::CHILD_DELETED,
                "DeleteChild",
                format!("no longer wanted by the spec: {}", deleted.join(", ")),
            )
            .await;
    }
    Ok(())
}
