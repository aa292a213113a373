//! The Kommerce operator: one process, one controller module per custom resource.
//!
//! Every controller reconciles in stages — read (I/O) → validate (pure) → build the desired
//! state (pure, no client, no clock) → apply → compute conditions (pure) → patch status — so
//! most of the logic is tested without any server (`cargo test`), and the I/O shell is tested
//! against a real API server, a real Kafka-protocol broker and a real Redis.
//!
//! [`run`] wires them: telemetry, `/metrics` and `/healthz`, leader election on a coordination
//! Lease (two replicas are safe: only the leader reconciles), then the controllers until
//! SIGTERM or until the lease is lost.

pub mod backoff;
pub mod claims;
pub mod cli;
pub mod conditions;
pub mod context;
pub mod crdgen;
pub mod http;
pub mod kafka_wire;
pub mod leader;
pub mod metrics;
pub mod rbac;
pub mod reconciler;
pub mod saga_topic;
pub mod shop_service;
pub mod stock_pool;

use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt as _;
use kommerce_kit::TelemetrySettings;
use tokio::sync::watch;

use crate::cli::Settings;
use crate::context::Shared;

/// The field manager of every write (server-side apply) and the Event reporter.
pub const MANAGER: &str = "kommerce-operator";

/// Runs the operator until SIGTERM/Ctrl-C (exit 0) or until it loses its lease (error, so the
/// pod restarts and campaigns again).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    kommerce_kit::telemetry::init(
        "kommerce-operator",
        &TelemetrySettings {
            log_filter: settings.log_filter.clone(),
            json: !settings.text_logs,
        },
    );
    metrics::install();
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes API server configuration (KUBECONFIG or in-cluster)")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        kommerce_kit::server::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let http = http::serve(settings.http_addr, stop_signal(stop_rx.clone()))
        .await
        .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
    tracing::info!(addr = %http.addr, "serving /metrics and /healthz");

    let lease = if settings.leader_election {
        let lock = leader::LeaseLock::new(client.clone(), &settings);
        let Some(held) = lock.acquire(stop_signal(stop_rx.clone())).await? else {
            tracing::info!("stopped before becoming leader");
            return Ok(());
        };
        Some(held)
    } else {
        tracing::warn!("leader election disabled: run a single replica");
        None
    };

    let shared = Arc::new(Shared::new(client.clone(), settings));
    let controllers = futures::future::join3(
        saga_topic::run(shared.clone(), stop_signal(stop_rx.clone())),
        stock_pool::run(shared.clone(), stop_signal(stop_rx.clone())),
        shop_service::run(shared.clone(), stop_signal(stop_rx.clone())),
    );
    let result = if let Some(held) = lease {
        let outcome = tokio::select! {
            () = controllers.map(|_| ()) => Ok(()),
            leader::Outcome::Lost(why) = held.keep_renewing(stop_signal(stop_rx.clone())) => {
                Err(anyhow::anyhow!("lost the leader lease: {why}"))
            }
        };
        if outcome.is_ok() {
            held.release().await;
        }
        outcome
    } else {
        controllers.await;
        Ok(())
    };
    http.stopped.await.ok();
    result
}

/// A future that resolves when the operator is asked to stop.
pub fn stop_signal(
    mut rx: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
    .boxed()
    .shared()
}
