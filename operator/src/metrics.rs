//! Prometheus metrics of the controllers, rendered at `GET /metrics`:
//!
//! - `kommerce_operator_reconciles_total{controller}`
//! - `kommerce_operator_reconcile_failures_total{controller, error}` (`error` is the failing
//!   stage, the controller Error's `metric_label()`)
//! - `kommerce_operator_reconcile_duration_seconds{controller}` (histogram)
//! - `kommerce_operator_leader{identity}` (1 while this replica holds the Lease)
//!
//! The operator owns its recorder: it does not run the services' HTTP stack, whose recorder
//! lives inside `kommerce-kit`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    DURATION_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Installs the process-wide recorder (idempotent).
pub fn install() {
    if handle().is_none() {
        tracing::warn!("another metrics recorder is installed; /metrics will be empty");
    }
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Records one reconcile of `controller`: its duration and, when it failed, the stage.
pub fn reconciled(controller: &'static str, elapsed: Duration, failure: Option<&'static str>) {
    metrics::counter!("kommerce_operator_reconciles_total", "controller" => controller)
        .increment(1);
    metrics::histogram!("kommerce_operator_reconcile_duration_seconds", "controller" => controller)
        .record(elapsed.as_secs_f64());
    if let Some(error) = failure {
        metrics::counter!(
            "kommerce_operator_reconcile_failures_total",
            "controller" => controller,
            "error" => error
        )
        .increment(1);
    }
}

/// Whether this replica leads.
pub fn leader(identity: &str, leading: bool) {
    metrics::gauge!("kommerce_operator_leader", "identity" => identity.to_owned())
        .set(if leading { 1.0 } else { 0.0 });
}
