//! The StockPool controller: the stock-locking policy in Redis, per
//! `docs/stockpool-contract.md`.
//!
//! `reconcile`: validate → build the document (pure) → `SET` + `PUBLISH` when it changed →
//! read the acknowledgements → conditions (pure) → patch status. While instances catch up it
//! looks again every `--stockpool-pending-recheck`, afterwards every `--stockpool-recheck`
//! (instances come and go). The finalizer `kommerce.dev/stockpool-cleanup` deletes the key and
//! announces `default`, so the item services fall back to their documented default.

pub mod desired;
pub mod store;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use kommerce_crds::conditions::{READY, RESOURCE_CONFLICT};
use kommerce_crds::{StockPool, StockPoolStatus, reasons};
use kube::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer;
use kube::runtime::reflector::Store;
use redis::aio::ConnectionManager;

use self::desired::{Acks, Invalid, Validated};
use crate::backoff::Backoffs;
use crate::claims::older_claimant;
use crate::conditions;
use crate::context::Shared;
use crate::reconciler::{self, ReconcileError, Reconciler};

pub const CONTROLLER: &str = "stockpool";
pub const FINALIZER: &str = "kommerce.dev/stockpool-cleanup";
const RECHECK_CONFLICT: std::time::Duration = std::time::Duration::from_secs(30);

/// One variant per stage that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] Invalid),
    #[error("connecting to Redis: {0}")]
    Connect(String),
    #[error("writing {key}: {source}")]
    Publish {
        key: String,
        source: redis::RedisError,
    },
    #[error("reading acknowledgements {pattern}: {source}")]
    ReadAcks {
        pattern: String,
        source: redis::RedisError,
    },
    #[error("removing {key}: {source}")]
    Remove {
        key: String,
        source: redis::RedisError,
    },
    #[error("patching status: {0}")]
    PatchStatus(#[source] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "invalid_spec",
            Self::Connect(_) => "connect",
            Self::Publish { .. } => "publish",
            Self::ReadAcks { .. } => "read_acks",
            Self::Remove { .. } => "remove",
            Self::PatchStatus(_) => "patch_status",
            Self::Finalizer(_) => "finalizer",
        }
    }

    fn is_redis(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::Publish { .. } | Self::ReadAcks { .. } | Self::Remove { .. }
        )
    }
}

pub struct Context {
    pub shared: Arc<Shared>,
    store: Store<StockPool>,
    connections: Mutex<HashMap<String, ConnectionManager>>,
    backoff: Backoffs<StockPool>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    async fn redis(&self, url: &str) -> Result<ConnectionManager, Error> {
        let cached = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(url)
            .cloned();
        if let Some(conn) = cached {
            return Ok(conn);
        }
        let conn = store::connect(url, self.shared.settings.backend_timeout)
            .await
            .map_err(Error::Connect)?;
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(url.to_owned(), conn.clone());
        Ok(conn)
    }

    async fn event(
        &self,
        sp: &StockPool,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.shared.event(sp, type_, reason, action, note).await;
    }

    /// What every StockPool in the cache claims.
    fn claims(&self) -> Vec<crate::claims::Claim> {
        let url = &self.shared.settings.redis_url;
        crate::claims::of_cache(&self.store, |o| {
            desired::validate(o, url)
                .ok()
                .map(|v| desired::claim(o, &v))
        })
    }
}

/// Runs the controller until `stop` resolves.
pub async fn run(shared: Arc<Shared>, stop: impl Future<Output = ()> + Send + Sync + 'static) {
    reconciler::run(
        shared,
        |shared, store| Context {
            shared,
            store,
            connections: Mutex::new(HashMap::new()),
            backoff: Backoffs::default(),
        },
        stop,
    )
    .await;
}

impl Reconciler for Context {
    type Resource = StockPool;
    type Status = StockPoolStatus;
    type Error = Error;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: Option<&'static str> = Some(FINALIZER);

    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn backoff(&self) -> &Backoffs<StockPool> {
        &self.backoff
    }

    async fn apply(&self, sp: &StockPool, api: &Api<StockPool>) -> Result<Action, Error> {
        apply(sp, self, api).await
    }

    async fn cleanup(&self, sp: &StockPool, _api: &Api<StockPool>) -> Result<Action, Error> {
        cleanup(sp, self).await
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
    api: &Api<StockPool>,
    sp: &StockPool,
    status: &StockPoolStatus,
) -> Result<(), Error> {
    reconciler::patch_status(api, sp, status)
        .await
        .map_err(Error::PatchStatus)
}

async fn report_failure(api: &Api<StockPool>, sp: &StockPool, error: Error) -> Error {
    let desired = match &error {
        Error::InvalidSpec(invalid) => desired::conditions_invalid(invalid),
        e if e.is_redis() => desired::conditions_redis_failed(&e.to_string()),
        _ => return error,
    };
    if let Err(e) = patch_status(api, sp, &reconciler::with_conditions(sp, &desired)).await {
        tracing::warn!(error = %e, "cannot write the failure into the status");
    }
    error
}

async fn apply(sp: &StockPool, ctx: &Context, api: &Api<StockPool>) -> Result<Action, Error> {
    let v = match desired::validate(sp, &ctx.shared.settings.redis_url) {
        Ok(v) => v,
        Err(invalid) => return Err(report_failure(api, sp, Error::InvalidSpec(invalid)).await),
    };
    let me = desired::claim(sp, &v);
    let key = desired::keys(&v).config;
    if let Some(owner) = older_claimant(&me, &ctx.claims()) {
        let owner = owner.display();
        let previous = sp.status.clone().unwrap_or_default();
        if !conditions::is_true(&previous.conditions, RESOURCE_CONFLICT) {
            ctx.event(
                sp,
                EventType::Warning,
                reasons::CLAIMED_BY_OTHER,
                "Reconcile",
                format!("{key} is managed by the older StockPool {owner}; not applied"),
            )
            .await;
        }
        patch_status(
            api,
            sp,
            &reconciler::with_conditions(sp, &desired::conditions_conflict(&key, &owner)),
        )
        .await?;
        return Ok(Action::requeue(
            ctx.shared.settings.drift_interval.min(RECHECK_CONFLICT),
        ));
    }
    match publish_and_count(sp, ctx, &v).await {
        Ok((status, action)) => {
            patch_status(api, sp, &status).await?;
            Ok(action)
        }
        Err(e) => Err(report_failure(api, sp, e).await),
    }
}

async fn publish_and_count(
    sp: &StockPool,
    ctx: &Context,
    v: &Validated,
) -> Result<(StockPoolStatus, Action), Error> {
    let settings = &ctx.shared.settings;
    let names = desired::keys(v);
    let key = names.config.clone();
    let hash = v.document.hash();
    let mut conn = ctx.redis(&v.redis_url).await?;
    let wrote = store::publish(
        &mut conn,
        &key,
        &names.channel,
        &v.document.document(),
        &hash,
    )
    .await
    .map_err(|source| Error::Publish {
        key: key.clone(),
        source,
    })?;
    if wrote {
        ctx.event(
            sp,
            EventType::Normal,
            reasons::CONFIG_PUBLISHED,
            "Publish",
            format!(
                "{key}: strategy {} (hash {hash})",
                v.document.strategy.as_str()
            ),
        )
        .await;
    }
    let pattern = names.ack_pattern();
    let acked = store::acknowledgements(&mut conn, &pattern)
        .await
        .map_err(|source| Error::ReadAcks { pattern, source })?;
    let acks = Acks::count(&acked, &hash);

    let previous = sp.status.clone().unwrap_or_default();
    if acks.all_on_current() && !conditions::is_true(&previous.conditions, READY) {
        ctx.event(
            sp,
            EventType::Normal,
            reasons::ALL_ACKNOWLEDGED,
            "Acknowledge",
            acks.summary(&hash),
        )
        .await;
    }
    let conds = desired::conditions_acks(acks, &hash);
    let status = StockPoolStatus {
        conditions: conditions::merge(
            &previous.conditions,
            &conds,
            sp.metadata.generation,
            &reconciler::now(),
        ),
        observed_generation: sp.metadata.generation,
        key: Some(key),
        acknowledged: Some(acks.summary(&hash)),
        hash: Some(hash),
        instances: Some(i32::try_from(acks.live).unwrap_or(i32::MAX)),
        acknowledged_instances: Some(i32::try_from(acks.current).unwrap_or(i32::MAX)),
    };
    let next = if acks.all_on_current() {
        settings.stockpool_recheck
    } else {
        settings.stockpool_pending_recheck
    };
    Ok((status, Action::requeue(next)))
}

async fn cleanup(sp: &StockPool, ctx: &Context) -> Result<Action, Error> {
    let Ok(v) = desired::validate(sp, &ctx.shared.settings.redis_url) else {
        return Ok(Action::await_change());
    };
    if older_claimant(&desired::claim(sp, &v), &ctx.claims()).is_some() {
        return Ok(Action::await_change());
    }
    let names = desired::keys(&v);
    let key = names.config.clone();
    let mut conn = ctx.redis(&v.redis_url).await?;
    store::remove(&mut conn, &key, &names.channel, desired::DEFAULT_HASH)
        .await
        .map_err(|source| Error::Remove {
            key: key.clone(),
            source,
        })?;
    ctx.event(
        sp,
        EventType::Normal,
        reasons::CONFIG_REMOVED,
        "Delete",
        format!("deleted {key}; item services fall back to their default"),
    )
    .await;
    Ok(Action::await_change())
}
