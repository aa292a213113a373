//! The SagaTopic controller: Kafka topics (and dead-letter topics) through the Admin API.
//!
//! The shell is [`crate::reconciler`]; `apply` stages: read the broker → [`desired::validate`] →
//! [`desired::plan`] (pure) → apply each step → conditions (pure) → patch status. The finalizer
//! `kommerce.dev/topic-cleanup` deletes the topics only with `deletionPolicy: Delete`.

pub mod broker;
pub mod desired;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kommerce_crds::conditions::{DELETION_BLOCKED, RESOURCE_CONFLICT};
use kommerce_crds::{DeletionPolicy, SagaTopic, SagaTopicStatus, TopicStatus, reasons};
use kube::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer;
use kube::runtime::reflector::Store;

use self::broker::{Broker, BrokerError};
use self::desired::{Invalid, Step, Validated};
use crate::backoff::Backoffs;
use crate::claims::older_claimant;
use crate::conditions::{self, Desired};
use crate::context::Shared;
use crate::reconciler::{self, ReconcileError, Reconciler};

/// Label of this controller in metrics and logs.
pub const CONTROLLER: &str = "sagatopic";
/// Held while topics may have to be deleted.
pub const FINALIZER: &str = "kommerce.dev/topic-cleanup";
/// How soon to look again while the broker catches up, or while another SagaTopic owns the name.
const WAIT_FOR_BROKER: Duration = Duration::from_secs(2);
const RECHECK_CONFLICT: Duration = Duration::from_secs(30);

/// One variant per stage that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] Invalid),
    #[error("reading topics from {bootstrap}: {source}")]
    Observe {
        bootstrap: String,
        source: BrokerError,
    },
    #[error("creating topic {topic}: {source}")]
    CreateTopic { topic: String, source: BrokerError },
    #[error("adding partitions to {topic}: {source}")]
    AddPartitions { topic: String, source: BrokerError },
    #[error("setting the config of {topic}: {source}")]
    SetConfig { topic: String, source: BrokerError },
    #[error("deleting topics {topics:?}: {source}")]
    DeleteTopics {
        topics: Vec<String>,
        source: BrokerError,
    },
    #[error("patching status: {0}")]
    PatchStatus(#[source] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// The `error` label of `kommerce_operator_reconcile_failures_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "invalid_spec",
            Self::Observe { .. } => "observe",
            Self::CreateTopic { .. } => "create_topic",
            Self::AddPartitions { .. } => "add_partitions",
            Self::SetConfig { .. } => "set_config",
            Self::DeleteTopics { .. } => "delete_topics",
            Self::PatchStatus(_) => "patch_status",
            Self::Finalizer(_) => "finalizer",
        }
    }

    fn broker_error(&self) -> Option<&BrokerError> {
        match self {
            Self::Observe { source, .. }
            | Self::CreateTopic { source, .. }
            | Self::AddPartitions { source, .. }
            | Self::SetConfig { source, .. }
            | Self::DeleteTopics { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The controller's state.
pub struct Context {
    pub shared: Arc<Shared>,
    store: Store<SagaTopic>,
    brokers: Mutex<HashMap<String, Arc<Broker>>>,
    backoff: Backoffs<SagaTopic>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    fn broker(&self, bootstrap: &str) -> Result<Arc<Broker>, BrokerError> {
        let mut brokers = self
            .brokers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = brokers.get(bootstrap) {
            return Ok(b.clone());
        }
        let b = Arc::new(Broker::connect(
            bootstrap,
            self.shared.settings.backend_timeout,
        )?);
        brokers.insert(bootstrap.to_owned(), b.clone());
        Ok(b)
    }

    /// What every SagaTopic in the cache claims.
    fn claims(&self) -> Vec<crate::claims::Claim> {
        let bootstrap = &self.shared.settings.kafka_bootstrap;
        crate::claims::of_cache(&self.store, |o| {
            desired::validate(o, bootstrap)
                .ok()
                .map(|v| desired::claim(o, &v))
        })
    }

    async fn event(
        &self,
        st: &SagaTopic,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.shared.event(st, type_, reason, action, note).await;
    }
}

/// Runs the controller until `stop` resolves.
pub async fn run(shared: Arc<Shared>, stop: impl Future<Output = ()> + Send + Sync + 'static) {
    reconciler::run(
        shared,
        |shared, store| Context {
            shared,
            store,
            brokers: Mutex::new(HashMap::new()),
            backoff: Backoffs::default(),
        },
        stop,
    )
    .await;
}

impl Reconciler for Context {
    type Resource = SagaTopic;
    type Status = SagaTopicStatus;
    type Error = Error;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: Option<&'static str> = Some(FINALIZER);

    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn backoff(&self) -> &Backoffs<SagaTopic> {
        &self.backoff
    }

    async fn apply(&self, st: &SagaTopic, api: &Api<SagaTopic>) -> Result<Action, Error> {
        apply(st, self, api).await
    }

    async fn cleanup(&self, st: &SagaTopic, api: &Api<SagaTopic>) -> Result<Action, Error> {
        cleanup(st, self, api).await
    }
}

impl ReconcileError for Error {
    fn metric_label(&self) -> &'static str {
        Error::metric_label(self)
    }

    fn awaits_a_spec_change(&self) -> bool {
        matches!(self, Self::InvalidSpec(_))
    }

    fn finalizer(e: finalizer::Error<Self>) -> Self {
        Self::Finalizer(Box::new(e))
    }
}

async fn patch_status(
    api: &Api<SagaTopic>,
    st: &SagaTopic,
    status: &SagaTopicStatus,
) -> Result<(), Error> {
    reconciler::patch_status(api, st, status)
        .await
        .map_err(Error::PatchStatus)
}

/// Writes a failure into the status (best effort: the reconcile error is what gets retried).
async fn report_failure(api: &Api<SagaTopic>, st: &SagaTopic, error: Error) -> Error {
    let desired = match (&error, error.broker_error()) {
        (Error::InvalidSpec(invalid), _) => desired::conditions_invalid(invalid),
        (_, Some(b)) => desired::conditions_failed(b.reason(), &error.to_string()),
        _ => return error,
    };
    if let Err(e) = patch_status(api, st, &reconciler::with_conditions(st, &desired)).await {
        tracing::warn!(error = %e, "cannot write the failure into the status");
    }
    error
}

async fn apply(st: &SagaTopic, ctx: &Context, api: &Api<SagaTopic>) -> Result<Action, Error> {
    let settings = &ctx.shared.settings;
    // validate (pure)
    let v = match desired::validate(st, &settings.kafka_bootstrap) {
        Ok(v) => v,
        Err(invalid) => return Err(report_failure(api, st, Error::InvalidSpec(invalid)).await),
    };
    // conflicts (pure, over the controller's cache)
    let me = desired::claim(st, &v);
    if let Some(owner) = older_claimant(&me, &ctx.claims()) {
        let owner = owner.display();
        let previous = st.status.clone().unwrap_or_default();
        if !conditions::is_true(&previous.conditions, RESOURCE_CONFLICT) {
            ctx.event(
                st,
                EventType::Warning,
                reasons::CLAIMED_BY_OTHER,
                "Reconcile",
                format!(
                    "topic {} is managed by the older SagaTopic {owner}; not applied",
                    v.topic
                ),
            )
            .await;
        }
        let mut status =
            reconciler::with_conditions(st, &desired::conditions_conflict(&v.topic, &owner));
        status.topic_name = Some(v.topic.clone());
        status.topics = vec![];
        patch_status(api, st, &status).await?;
        return Ok(Action::requeue(
            ctx.shared.settings.drift_interval.min(RECHECK_CONFLICT),
        ));
    }
    match apply_to_broker(st, ctx, &v).await {
        Ok((status, action)) => {
            patch_status(api, st, &status).await?;
            Ok(action)
        }
        Err(e) => Err(report_failure(api, st, e).await),
    }
}

/// Read the broker, plan, apply, read again; returns the status to write.
async fn apply_to_broker(
    st: &SagaTopic,
    ctx: &Context,
    v: &Validated,
) -> Result<(SagaTopicStatus, Action), Error> {
    let observe_error = |source| Error::Observe {
        bootstrap: v.bootstrap.clone(),
        source,
    };
    let broker = ctx.broker(&v.bootstrap).map_err(observe_error)?;
    let desired = desired::desired_topics(v);
    let names: Vec<String> = desired.iter().map(|t| t.name.clone()).collect();
    let observed = broker.observe(&names).await.map_err(observe_error)?;
    let plan = desired::plan(&desired, &observed);
    let previous = st.status.clone().unwrap_or_default();
    let drift = desired::is_drift(st.metadata.generation, previous.observed_generation);

    apply_steps(st, ctx, &broker, &plan, drift).await?;
    let now = reconciler::now();
    let drift_list = if drift {
        desired::record_drift(&previous.drift, &plan, &now)
    } else {
        previous.drift.clone()
    };
    let observed = if plan.steps.is_empty() {
        observed
    } else {
        broker.observe(&names).await.map_err(observe_error)?
    };
    let topics = names
        .iter()
        .filter_map(|n| {
            observed.get(n).map(|o| TopicStatus {
                name: n.clone(),
                partitions: o.partitions,
            })
        })
        .collect();

    let settings = &ctx.shared.settings;
    let (conds, observed_generation, action) = if !plan.partitions_above_spec.is_empty() {
        (
            desired::conditions_partitions_above_spec(&plan.partitions_above_spec),
            previous.observed_generation,
            Action::requeue(settings.drift_interval),
        )
    } else if desired::converged(&desired, &observed) {
        (
            desired::conditions_ready(v),
            st.metadata.generation,
            Action::requeue(settings.drift_interval),
        )
    } else {
        (
            desired::conditions_waiting("the broker does not show the change yet"),
            previous.observed_generation,
            Action::requeue(WAIT_FOR_BROKER),
        )
    };
    let status = SagaTopicStatus {
        conditions: conditions::merge(&previous.conditions, &conds, st.metadata.generation, &now),
        observed_generation,
        topic_name: Some(v.topic.clone()),
        topics,
        drift: drift_list,
    };
    Ok((status, action))
}

/// Runs the plan's steps on the broker and reports them as Events, aggregated per reason (the
/// recorder folds repeats of one reason into a series, which would hide all but the first).
async fn apply_steps(
    st: &SagaTopic,
    ctx: &Context,
    broker: &Broker,
    plan: &desired::Plan,
    drift: bool,
) -> Result<(), Error> {
    let (mut created, mut grown, mut configured) = (Vec::new(), Vec::new(), Vec::new());
    for step in &plan.steps {
        match step {
            Step::Create(topic) => {
                broker
                    .create(topic)
                    .await
                    .map_err(|source| Error::CreateTopic {
                        topic: topic.name.clone(),
                        source,
                    })?;
                created.push(format!("{} ({} partitions)", topic.name, topic.partitions));
            }
            Step::AddPartitions { topic, from, to } => {
                broker
                    .add_partitions(topic, *to)
                    .await
                    .map_err(|source| Error::AddPartitions {
                        topic: topic.clone(),
                        source,
                    })?;
                grown.push(format!("{topic}: {from} → {to} partitions"));
            }
            Step::SetConfig { topic, changes } => {
                broker
                    .set_config(topic, changes)
                    .await
                    .map_err(|source| Error::SetConfig {
                        topic: topic.clone(),
                        source,
                    })?;
                let what = changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{}={} (was {})",
                            c.key,
                            c.desired,
                            c.observed.as_deref().unwrap_or("unset")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                configured.push(format!("{topic}: {what}"));
            }
        }
    }
    if !created.is_empty() {
        ctx.event(
            st,
            EventType::Normal,
            reasons::TOPIC_CREATED,
            "CreateTopic",
            format!("created {}", created.join(", ")),
        )
        .await;
    }
    if !grown.is_empty() {
        ctx.event(
            st,
            EventType::Normal,
            reasons::PARTITIONS_INCREASED,
            "AddPartitions",
            grown.join("; "),
        )
        .await;
    }
    if !configured.is_empty() {
        if drift {
            ctx.event(
                st,
                EventType::Warning,
                reasons::DRIFT_CORRECTED,
                "CorrectDrift",
                format!(
                    "changed outside the operator, set back: {}",
                    configured.join("; ")
                ),
            )
            .await;
        } else {
            ctx.event(
                st,
                EventType::Normal,
                reasons::CONFIG_APPLIED,
                "SetConfig",
                configured.join("; "),
            )
            .await;
        }
    }
    Ok(())
}

async fn cleanup(st: &SagaTopic, ctx: &Context, api: &Api<SagaTopic>) -> Result<Action, Error> {
    let settings = &ctx.shared.settings;
    // An invalid spec never created anything.
    let Ok(v) = desired::validate(st, &settings.kafka_bootstrap) else {
        return Ok(Action::await_change());
    };
    let me = desired::claim(st, &v);
    if older_claimant(&me, &ctx.claims()).is_some() {
        // The topics belong to the older SagaTopic.
        return Ok(Action::await_change());
    }
    let names: Vec<String> = desired::desired_topics(&v)
        .into_iter()
        .map(|t| t.name)
        .collect();
    match v.deletion_policy {
        DeletionPolicy::Orphan => {
            ctx.event(
                st,
                EventType::Normal,
                reasons::TOPIC_ORPHANED,
                "Delete",
                format!("deletionPolicy Orphan: kept {}", names.join(", ")),
            )
            .await;
            Ok(Action::await_change())
        }
        DeletionPolicy::Delete => {
            let deleted = match ctx.broker(&v.bootstrap) {
                Ok(broker) => broker.delete(&names).await,
                Err(e) => Err(e),
            };
            match deleted {
                Ok(()) => {
                    ctx.event(
                        st,
                        EventType::Normal,
                        reasons::TOPIC_DELETED,
                        "Delete",
                        format!("deleted {}", names.join(", ")),
                    )
                    .await;
                    Ok(Action::await_change())
                }
                Err(source) => {
                    let error = Error::DeleteTopics {
                        topics: names,
                        source,
                    };
                    let previous = st.status.clone().unwrap_or_default();
                    let blocked = Desired::new(
                        DELETION_BLOCKED,
                        true,
                        reasons::DELETE_FAILED,
                        error.to_string(),
                    );
                    let status = SagaTopicStatus {
                        conditions: conditions::upsert(
                            &previous.conditions,
                            &blocked,
                            st.metadata.generation,
                            &reconciler::now(),
                        ),
                        ..previous
                    };
                    if let Err(e) = patch_status(api, st, &status).await {
                        tracing::warn!(error = %e, "cannot write DeletionBlocked");
                    }
                    Err(error)
                }
            }
        }
    }
}
