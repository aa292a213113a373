//! Prometheus metrics: one recorder per process, rendered at `GET /metrics`.
//!
//! HTTP metrics are recorded by the layer stack: `http_requests_total` and
//! `http_request_duration_seconds`, labelled by method, matched route (never the raw path, so
//! ids do not explode the series) and status.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide recorder on first use; `None` if another recorder was installed.
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Makes sure the recorder exists before the first request is counted.
pub fn install() {
    if handle().is_none() {
        tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
    }
}

/// The Prometheus text of every metric recorded in this process so far.
pub fn render_text() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

pub(crate) async fn render() -> impl IntoResponse {
    let body = render_text();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
}

pub(crate) fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}
