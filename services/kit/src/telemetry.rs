//! Logs: JSON lines (or text for local runs) filtered by `RUST_LOG` or the configured filter.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::TelemetrySettings;

/// The installed filter, changeable while the process runs (`telemetry.log_filter` is a live
/// key). `None` when `RUST_LOG` decides: the environment wins.
static FILTER: OnceLock<Option<reload::Handle<EnvFilter, Registry>>> = OnceLock::new();

/// Replaces the log filter of the running process. `Ok(false)` when `RUST_LOG` decides or no
/// subscriber of ours is installed.
pub fn set_log_filter(filter: &str) -> Result<bool, String> {
    let Some(Some(handle)) = FILTER.get() else {
        return Ok(false);
    };
    let parsed = EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
    handle.reload(parsed).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Installs the global subscriber. Safe to call more than once (tests build many apps in one
/// process): later calls keep the first subscriber.
pub fn init(service: &'static str, settings: &TelemetrySettings) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let by_env = from_env.is_some();
    let filter = from_env
        .or_else(|| EnvFilter::try_new(&settings.log_filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::NONE)
        .with_target(true);
    let installed = if settings.json {
        tracing_subscriber::registry()
            .with(filter)
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
    } else {
        // Colours only on a terminal: under `kommerce up` or a log collector they are noise.
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt.compact().with_ansi(std::io::stdout().is_terminal()))
            .try_init()
    };
    if installed.is_ok() {
        let _ = FILTER.set((!by_env).then_some(handle));
        tracing::info!(service, "telemetry initialised");
    }
}
