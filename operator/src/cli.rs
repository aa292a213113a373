//! Command line: `kommerce-operator [run] [--flags]` and `kommerce-operator crdgen`. Every flag
//! has an environment variable, so a Deployment configures the operator with `env:`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kommerce-operator",
    version,
    about = "Reconciles Kommerce's custom resources",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand: `run` with these settings.
    #[command(flatten)]
    pub run: Settings,
}

impl Cli {
    /// The subcommand to execute (`run` when none is given).
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
pub enum Command {
    /// Run the controllers (the default).
    Run(Settings),
    /// Write the CRD YAML generated from the Rust types.
    Crdgen(CrdgenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CrdgenArgs {
    /// Directory to write `<plural>.kommerce.dev.yaml` into.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds"))]
    pub out_dir: PathBuf,
    /// Print all CRDs to stdout as one multi-document YAML instead.
    #[arg(long)]
    pub stdout: bool,
}

/// Everything the running operator can be told.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Kafka bootstrap servers for SagaTopics that do not name their own.
    #[arg(
        long,
        env = "KOMMERCE_KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap: String,
    /// Redis for StockPools that do not name their own (may carry credentials).
    #[arg(
        long,
        env = "KOMMERCE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// How often a Ready SagaTopic is compared with the broker again (drift check).
    #[arg(long, env = "KOMMERCE_DRIFT_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub drift_interval: Duration,
    /// How often a StockPool's acknowledgements are read again once all instances are on it.
    #[arg(long, env = "KOMMERCE_STOCKPOOL_RECHECK", default_value = "15s", value_parser = parse_duration)]
    pub stockpool_recheck: Duration,
    /// How often acknowledgements are polled while instances are still catching up.
    #[arg(long, env = "KOMMERCE_STOCKPOOL_PENDING_RECHECK", default_value = "2s", value_parser = parse_duration)]
    pub stockpool_pending_recheck: Duration,
    /// Timeout of one Kafka admin request or Redis command.
    #[arg(long, env = "KOMMERCE_BACKEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub backend_timeout: Duration,
    /// The IngressClass of ShopService Ingresses (default: the cluster's default class).
    #[arg(long, env = "KOMMERCE_INGRESS_CLASS")]
    pub ingress_class: Option<String>,
    /// The namespace of the ingress controller: ShopService pods admit traffic from it (and
    /// from other Kommerce pods) only.
    #[arg(
        long,
        env = "KOMMERCE_INGRESS_NAMESPACE",
        default_value = "ingress-nginx"
    )]
    pub ingress_namespace: String,
    /// A ShopService's Deployment that makes no progress for this long is reported Degraded
    /// (the Deployment's `progressDeadlineSeconds`).
    #[arg(long, env = "KOMMERCE_PROGRESS_DEADLINE", default_value = "10m", value_parser = parse_duration)]
    pub progress_deadline: Duration,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "KOMMERCE_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// `/metrics` and `/healthz`.
    #[arg(long, env = "KOMMERCE_OPERATOR_HTTP", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Campaign for the Lease before reconciling (turn off only for a single local replica).
    #[arg(long, env = "KOMMERCE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the coordination Lease.
    #[arg(long, env = "KOMMERCE_LEASE_NAME", default_value = "kommerce-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (in a cluster: the operator's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Lease duration: a leader that has not renewed for this long is replaced.
    #[arg(long, env = "KOMMERCE_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// This replica's identity in the Lease and in Events (in a cluster: the pod name).
    #[arg(long, env = "POD_NAME", default_value_t = default_identity())]
    pub identity: String,
    /// `tracing` filter (`RUST_LOG` wins).
    #[arg(
        long,
        env = "KOMMERCE_LOG",
        default_value = "info,kube=warn,rdkafka=warn"
    )]
    pub log_filter: String,
    /// Human-readable logs instead of JSON lines.
    #[arg(long, env = "KOMMERCE_TEXT_LOGS")]
    pub text_logs: bool,
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "operator".into(), |h| h.trim().to_owned());
    format!("{host}-{}", std::process::id())
}

/// `90s`, `5m`, `1h`, `250ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 30s, 5m or 250ms"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("'{s}' has an unknown unit (use ms, s, m or h)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn no_arguments_means_run_with_defaults() {
        let cli = Cli::parse_from(["kommerce-operator"]);
        assert!(cli.command.is_none());
        let Command::Run(settings) = cli.into_command() else {
            panic!("default is run");
        };
        assert_eq!(settings.kafka_bootstrap, "127.0.0.1:9092");
        assert!(settings.leader_election);
        assert_eq!(settings.drift_interval, Duration::from_secs(300));
    }

    #[test]
    fn flags_work_with_and_without_the_run_subcommand() {
        let top = Cli::parse_from(["kommerce-operator", "--namespace", "shop"]).into_command();
        assert!(matches!(top, Command::Run(s) if s.namespace.as_deref() == Some("shop")));
        let sub = Cli::parse_from(["kommerce-operator", "run", "--leader-election", "false"])
            .into_command();
        assert!(matches!(sub, Command::Run(s) if !s.leader_election));
        let crdgen = Cli::parse_from(["kommerce-operator", "crdgen", "--stdout"]).into_command();
        assert!(matches!(crdgen, Command::Crdgen(a) if a.stdout));
    }
}
