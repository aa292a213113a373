//! Prometheus metrics of the controllers, rendered at `GET /metrics`:
//!
//! - `kommerce_operator_reconciles_total{controller}`
//! - `kommerce_operator_reconcile_failures_total{controller, error}` (`error` is the failing
//!   stage, the controller Error's `metric_label()`)
//! - `kommerce_operator_reconcile_duration_seconds{controller}` (histogram)
//! - `kommerce_operator_leader{identity}` (1 while this replica holds the Lease)
//!
//! The recorder is the kit's (`kommerce_kit::http::metrics`), as in every service.

use std::time::Duration;

/// Installs the process-wide recorder (idempotent): the kit's, shared with the services.
pub use kommerce_kit::http::metrics::install;

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    kommerce_kit::http::metrics::render_text()
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
