//! Logs: JSON lines (or text for local runs) filtered by `RUST_LOG` or the configured filter.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::TelemetrySettings;

/// Installs the global subscriber. Safe to call more than once (tests build many apps in one
/// process): later calls keep the first subscriber.
pub fn init(service: &'static str, settings: &TelemetrySettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_target(true);
    let installed = if settings.json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        // Colours only on a terminal: under `kommerce up` or a log collector they are noise.
        builder
            .compact()
            .with_ansi(std::io::stdout().is_terminal())
            .try_init()
    };
    if installed.is_ok() {
        tracing::info!(service, "telemetry initialised");
    }
}
