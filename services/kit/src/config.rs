//! Layered configuration: defaults ← file ← environment.
//!
//! - defaults: every settings struct is `#[serde(default)]`, so an empty file is valid;
//! - file: TOML at `$KOMMERCE_CONFIG`, else `/etc/kommerce/config.toml` (where the operator
//!   mounts the ConfigMap); a missing default file is fine, a missing explicit one is an error;
//! - environment: `KOMMERCE_<SECTION>__<KEY>`, e.g. `KOMMERCE_HTTP__PORT=8081`,
//!   `KOMMERCE_DATABASE__URL=postgres://...`.
//!
//! Secrets ([`Secret`]) deserialise like strings and never print.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

use crate::Secret;

/// Where the operator mounts a service's ConfigMap.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/kommerce/config.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

/// Loads `T` from the default file location (or `$KOMMERCE_CONFIG`) and the environment.
pub fn load<T: for<'de> Deserialize<'de>>() -> Result<T, ConfigError> {
    let explicit = std::env::var_os("KOMMERCE_CONFIG").map(PathBuf::from);
    let path = match explicit {
        Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path)),
        Some(path) => path,
        None => PathBuf::from(DEFAULT_CONFIG_PATH),
    };
    let settings = load_from(&path)?;
    if path.exists() {
        let _ = LOADED_FROM.set(path);
    }
    Ok(settings)
}

/// The file [`load`] read the settings from (none when there was no file): the one the service
/// watches for live changes.
static LOADED_FROM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

pub fn loaded_from() -> Option<PathBuf> {
    LOADED_FROM.get().cloned()
}

/// Loads `T` from `path` (skipped when absent) overlaid with `KOMMERCE_*` variables.
pub fn load_from<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    Figment::new()
        .merge(Toml::file(path))
        // Only `SECTION__KEY` variables: `KOMMERCE_CONFIG` and tool variables are not settings.
        .merge(
            Env::prefixed("KOMMERCE_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        )
        .extract()
        .map_err(|e| ConfigError::Invalid(Box::new(e)))
}

/// Checks a config file's text against a service's settings type, as the service would read
/// it (without the environment): the key the first problem is at (`cache.ttl_secs`) and why.
pub fn check_toml<T: for<'de> Deserialize<'de>>(text: &str) -> Result<(), (String, String)> {
    Figment::new()
        .merge(Toml::string(text))
        .extract::<T>()
        .map(|_| ())
        .map_err(|e| {
            let key = e.path.join(".");
            let key = if key.is_empty() { "*".to_owned() } else { key };
            (key, e.kind.to_string())
        })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    /// Largest accepted request body; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Requests running longer than this get 408 and are dropped.
    pub request_timeout_ms: u64,
    /// Peers whose `X-Forwarded-For` is believed (the local router, the ingress controller);
    /// from anyone else the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8080,
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            trusted_proxies: vec![
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// Run the service's migrations at start-up (off when a Job runs them instead).
    pub migrate: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:5432/postgres"),
            max_connections: 10,
            acquire_timeout_ms: 3_000,
            migrate: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    pub url: Secret,
    /// Namespace of every key this deployment writes; tests use a unique one each.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("redis://127.0.0.1:6379"),
            key_prefix: "kommerce:".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Ed25519 public key (raw 32 bytes, base64url) every service verifies access tokens with.
    pub public_key: String,
    /// Ed25519 private key (PKCS#8 DER, base64url); only the user service has it.
    pub signing_key: Secret,
    pub issuer: String,
    /// The user service's key file, instead of `signing_key`: one private key per line (the
    /// first signs, all are published at `/api/v1/auth/jwks.json`), re-read when it changes —
    /// a mounted Secret in a cluster (ADR 0015). Empty: `signing_key` alone.
    pub signing_keys_file: String,
    /// Where the published keys are (`http://user/api/v1/auth/jwks.json`): tokens are verified
    /// by the key their `kid` names. Empty: `public_key` alone.
    pub jwks_url: String,
    /// How old the cached published keys may grow before they are fetched again (in the
    /// background; a token naming an unknown key fetches them at once).
    pub jwks_refresh_secs: u64,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// This service's own Ed25519 private key (PKCS#8 DER, base64url) for calling other
    /// services' internal APIs (`kommerce_kit::credential`); a Secret in a cluster.
    pub service_key: Secret,
    /// The public key (raw, base64url) of every service allowed to call this one's internal
    /// API, by service name (`kommerce` for the command-line tools); during a rotation, the
    /// old and the new key, comma-separated.
    pub service_keys: std::collections::BTreeMap<String, String>,
    /// A directory of callers' public keys, one file per caller named after it (what a mounted
    /// ConfigMap gives: the operator keeps `kommerce-service-keys` up to date, ADR 0021); read
    /// again when it changes, beside `service_keys`. Empty: none.
    pub service_keys_dir: String,
    /// How long a service credential lives.
    pub service_ttl_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            public_key: String::new(),
            signing_key: Secret::default(),
            issuer: "kommerce".into(),
            signing_keys_file: String::new(),
            jwks_url: String::new(),
            jwks_refresh_secs: 60,
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 14 * 24 * 3600,
            service_key: Secret::default(),
            service_keys: std::collections::BTreeMap::new(),
            service_keys_dir: String::new(),
            service_ttl_secs: 60,
        }
    }
}

impl KafkaSettings {
    /// The full name of topic `name` (`payments` → `<namespace>.payments`).
    pub fn topic(&self, name: &str) -> String {
        self.qualify(name)
    }

    /// The full name of consumer group `name`.
    pub fn group(&self, name: &str) -> String {
        self.qualify(name)
    }

    fn qualify(&self, name: &str) -> String {
        qualified(&self.namespace, name)
    }
}

/// `name` (a topic, a group) in `namespace`: `<namespace>.<name>`, or `name` without one.
pub fn qualified(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

/// `[peers]`: where the other services' internal APIs are. The defaults are the ports
/// `kommerce up` gives them (from [`crate::topology`]); in a cluster they are Service names set by the chart.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeersSettings {
    pub user: String,
    pub item: String,
    pub order: String,
    pub pay: String,
    pub review: String,
    pub image: String,
    /// Time limit of one internal call.
    pub timeout_ms: u64,
}

impl Default for PeersSettings {
    fn default() -> Self {
        use crate::topology::{IMAGE, ITEM, ORDER, PAY, REVIEW, USER};
        Self {
            user: USER.local_url(),
            item: ITEM.local_url(),
            order: ORDER.local_url(),
            pay: PAY.local_url(),
            review: REVIEW.local_url(),
            image: IMAGE.local_url(),
            timeout_ms: 5_000,
        }
    }
}

/// `[kafka]`: the broker and the messaging backbone's knobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// Prefix of every topic and consumer group name (`<namespace>.payments`); empty by
    /// default. Tests give each run its own, so runs sharing a broker never meet.
    pub namespace: String,
    pub client_id: String,
    /// Partitions of topics created by `ensure_topics` (outside Kubernetes).
    pub partitions: i32,
    /// Create missing topics at start-up (off in a cluster, where SagaTopics own them).
    pub ensure_topics: bool,
    /// Handler attempts per message before it goes to the dead-letter topic.
    pub max_attempts: u32,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub session_timeout_ms: u64,
    /// This process's stable name among the instances of its service (the pod name; `kommerce
    /// up` gives the service's name). When set, every consumer is a static member of its group
    /// (`group.instance.id` = this, plus its index): a restarted process takes its partitions
    /// back at once instead of after the session timeout, and so does every consumer after a
    /// broker restart. Two live processes must never share one (the broker fences the older);
    /// unset, membership is dynamic.
    pub instance_id: Option<String>,
    /// A send not acknowledged within this is failed and retried from the outbox.
    pub send_timeout_ms: u64,
    pub relay_batch: u32,
    /// The most messages a consumer applies in one transaction: what the client has already
    /// fetched of a partition when a message arrives, up to this. `1` applies each message in
    /// a transaction of its own.
    pub consume_batch: u32,
    /// How often the relay looks at the outbox without a NOTIFY.
    pub relay_poll_ms: u64,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            namespace: String::new(),
            client_id: "kommerce".into(),
            partitions: 3,
            ensure_topics: true,
            max_attempts: 5,
            retry_backoff_ms: 50,
            retry_backoff_max_ms: 2_000,
            session_timeout_ms: 10_000,
            instance_id: None,
            send_timeout_ms: 10_000,
            relay_batch: 100,
            consume_batch: 64,
            relay_poll_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` env-filter directives; `RUST_LOG` wins when set.
    pub log_filter: String,
    /// JSON lines (default) or human-readable text for local runs.
    pub json: bool,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_filter: "info,sqlx=warn,tower_http=info".into(),
            json: true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature is not ours
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Settings {
        http: HttpSettings,
        database: DatabaseSettings,
    }

    #[test]
    fn a_config_text_is_checked_naming_the_key() {
        assert_eq!(check_toml::<Settings>("[http]\nport = 9000\n"), Ok(()));
        let (key, why) = check_toml::<Settings>("[http]\nprot = 9000\n").expect_err("unknown");
        assert_eq!(key, "http.prot");
        assert!(why.contains("unknown field"), "{why}");
        let (key, _) = check_toml::<Settings>("[http]\nport = \"high\"\n").expect_err("a string");
        assert_eq!(key, "http.port");
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[http]\nport = 9000\nhost = \"127.0.0.1\"\n[database]\nurl = \"postgres://file\"\n",
            )?;
            jail.set_env("KOMMERCE_HTTP__PORT", "9001");
            jail.set_env("KOMMERCE_STATE_DIR", "/not/a/setting");
            let s: Settings = load_from(Path::new("c.toml")).expect("valid");
            assert_eq!(s.http.port, 9001, "env wins over file");
            assert_eq!(s.http.host, "127.0.0.1", "file wins over default");
            assert_eq!(s.http.body_limit_bytes, 64 * 1024, "default kept");
            assert_eq!(s.database.url.expose(), "postgres://file");
            assert!(
                !format!("{s:?}").contains("postgres://file"),
                "secret printed"
            );
            Ok(())
        });
    }

    #[test]
    fn a_key_directory_and_a_callers_key_come_from_the_environment() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct WithAuth {
            auth: crate::AuthSettings,
        }
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "")?;
            // What the operator sets beside what a person may.
            jail.set_env(
                "KOMMERCE_AUTH__SERVICE_KEYS_DIR",
                "/etc/kommerce-service-keys",
            );
            jail.set_env("KOMMERCE_AUTH__SERVICE_KEYS__PAY", "cHVibGlj");
            let s: WithAuth = load_from(Path::new("c.toml")).expect("valid");
            assert_eq!(s.auth.service_keys_dir, "/etc/kommerce-service-keys");
            assert_eq!(s.auth.service_keys["pay"], "cHVibGlj");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[http]\nprot = 1\n")?;
            let err = load_from::<Settings>(Path::new("c.toml")).expect_err("typo must fail");
            assert!(err.to_string().contains("prot"), "{err}");
            Ok(())
        });
    }
}
