//! Configuration that changes while the service runs. In a cluster the config file is a mounted
//! ConfigMap that the kubelet updates in place; the service watches it and applies the keys it
//! declares live (`kommerce_contracts::config::live_keys`) at once — the log filter here, the
//! rest wherever the service reads [`Live::get`] — and logs every change, saying which keys
//! wait for the next restart (the operator rolls the Deployment for those).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;

use crate::workers::{StopSignal, Workers};

/// How often the file is looked at.
pub const POLL: Duration = Duration::from_secs(2);

/// The current settings; `get` returns the latest applied.
#[derive(Debug)]
pub struct Live<S> {
    rx: watch::Receiver<Arc<S>>,
}

impl<S> Clone for Live<S> {
    fn clone(&self) -> Self {
        Self {
            rx: self.rx.clone(),
        }
    }
}

impl<S> Live<S> {
    /// Settings that never change (tests, or no config file).
    pub fn fixed(settings: S) -> Self {
        Self {
            rx: watch::channel(Arc::new(settings)).1,
        }
    }

    pub fn get(&self) -> Arc<S> {
        self.rx.borrow().clone()
    }
}

impl<S> Live<S>
where
    S: for<'de> Deserialize<'de> + Send + Sync + 'static,
{
    /// Watches the file the settings were loaded from ([`crate::config::loaded_from`]; none:
    /// fixed) as a worker of the service.
    pub fn start(workers: &mut Workers, initial: S, live_keys: &'static [&'static str]) -> Self {
        Self::watch(
            workers,
            crate::config::loaded_from(),
            initial,
            live_keys,
            POLL,
        )
    }

    /// Watches `path` (`None`: fixed) every `poll` as a worker of the service.
    pub fn watch(
        workers: &mut Workers,
        path: Option<PathBuf>,
        initial: S,
        live_keys: &'static [&'static str],
        poll: Duration,
    ) -> Self {
        let (tx, rx) = watch::channel(Arc::new(initial));
        if let Some(path) = path {
            let tx = Arc::new(tx);
            workers.spawn_loop("config-watch", move |stop| {
                follow(path.clone(), Arc::clone(&tx), live_keys, poll, stop)
            });
        }
        Self { rx }
    }
}

fn read_table(text: &str) -> Option<toml::Table> {
    text.parse::<toml::Table>().ok()
}

/// One look at the file: applies what changed since the last look.
struct Watcher<S> {
    path: PathBuf,
    last: String,
    tx: Arc<watch::Sender<Arc<S>>>,
    live_keys: &'static [&'static str],
}

impl<S> Watcher<S>
where
    S: for<'de> Deserialize<'de> + Send + Sync + 'static,
{
    /// Returns the changed keys it applied (empty when nothing changed or the file is refused).
    async fn check(&mut self) -> Vec<String> {
        let Ok(text) = tokio::fs::read_to_string(&self.path).await else {
            return Vec::new();
        };
        if text == self.last {
            return Vec::new();
        }
        let before = read_table(&self.last).unwrap_or_default();
        let Some(after) = read_table(&text) else {
            tracing::error!(path = %self.path.display(), "the config file is not TOML; keeping the running config");
            return Vec::new();
        };
        let settings: S = match crate::config::load_from(&self.path) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the changed config is invalid; keeping the running config");
                return Vec::new();
            }
        };
        self.last = text;
        let changed = changed_keys(&before, &after);
        let (live, restart): (Vec<&String>, Vec<&String>) = changed
            .iter()
            .partition(|k| self.live_keys.contains(&k.as_str()));
        if live.iter().any(|k| *k == "telemetry.log_filter") {
            let filter = lookup(&after, "telemetry.log_filter")
                .and_then(toml::Value::as_str)
                .unwrap_or("info");
            match crate::telemetry::set_log_filter(filter) {
                Ok(true) => {}
                Ok(false) => tracing::info!(
                    "RUST_LOG decides the log filter; telemetry.log_filter is not applied"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "telemetry.log_filter is not a filter; keeping the current one");
                }
            }
        }
        self.tx.send_replace(Arc::new(settings));
        for key in &live {
            tracing::info!(key = %key, "config changed: applied live");
        }
        for key in &restart {
            tracing::warn!(key = %key, "config changed: takes effect at the next restart");
        }
        changed
    }
}

async fn follow<S>(
    path: PathBuf,
    tx: Arc<watch::Sender<Arc<S>>>,
    live_keys: &'static [&'static str],
    poll: Duration,
    stop: StopSignal,
) where
    S: for<'de> Deserialize<'de> + Send + Sync + 'static,
{
    tokio::pin!(stop);
    let last = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    let mut watcher = Watcher {
        path,
        last,
        tx,
        live_keys,
    };
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(poll) => {}
        }
        watcher.check().await;
    }
}

fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let (section, rest) = key.split_once('.')?;
    table.get(section)?.as_table()?.get(rest)
}

/// The `section.key` paths whose values differ between two config files (a whole section
/// added or removed counts as each of its keys). Pure.
pub fn changed_keys(before: &toml::Table, after: &toml::Table) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let sections: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for section in sections {
        let empty = toml::Table::new();
        let b = before.get(section).and_then(toml::Value::as_table);
        let a = after.get(section).and_then(toml::Value::as_table);
        match (b, a) {
            (Some(b), Some(a)) => {
                let names: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
                keys.extend(
                    names
                        .into_iter()
                        .filter(|k| b.get(*k) != a.get(*k))
                        .map(|k| format!("{section}.{k}")),
                );
            }
            (b, a) => {
                // A section appeared, went, or is not a table: every key it holds changed.
                let whole = b.or(a).unwrap_or(&empty);
                if whole.is_empty() && before.get(section) != after.get(section) {
                    keys.push(section.clone());
                }
                keys.extend(whole.keys().map(|k| format!("{section}.{k}")));
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> toml::Table {
        s.parse().expect("toml")
    }

    #[test]
    fn changed_keys_are_named_by_section_and_key() {
        let a = t("[cache]\nttl_secs = 60\n[telemetry]\nlog_filter = \"info\"\n");
        assert!(changed_keys(&a, &a).is_empty());
        let b = t("[cache]\nttl_secs = 61\n[telemetry]\nlog_filter = \"info\"\n");
        assert_eq!(changed_keys(&a, &b), ["cache.ttl_secs"]);
        let c = t("[telemetry]\nlog_filter = \"debug\"\n[database]\nurl = \"x\"\n");
        assert_eq!(
            changed_keys(&a, &c),
            ["cache.ttl_secs", "database.url", "telemetry.log_filter"]
        );
    }

    #[derive(Debug, Deserialize)]
    struct Demo {
        #[serde(default)]
        cache: DemoCache,
    }

    #[derive(Debug, Default, Deserialize)]
    struct DemoCache {
        #[serde(default)]
        ttl_secs: u64,
    }

    #[tokio::test]
    async fn a_change_of_the_file_reaches_the_running_service_and_a_bad_one_does_not() {
        let path =
            std::env::temp_dir().join(format!("kommerce-live-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, "[cache]\nttl_secs = 60\n").expect("write");
        let initial: Demo = crate::config::load_from(&path).expect("loads");
        let (tx, rx) = watch::channel(Arc::new(initial));
        let live = Live { rx };
        let mut watcher = Watcher {
            path: path.clone(),
            last: std::fs::read_to_string(&path).expect("read"),
            tx: Arc::new(tx),
            live_keys: &["cache.ttl_secs"],
        };
        assert!(watcher.check().await.is_empty(), "nothing changed");
        std::fs::write(&path, "[cache]\nttl_secs = 61\n").expect("write");
        assert_eq!(watcher.check().await, ["cache.ttl_secs"]);
        assert_eq!(live.get().cache.ttl_secs, 61);
        // An invalid file is refused: the running value stays, and it is looked at again.
        std::fs::write(&path, "[cache]\nttl_secs = \"soon\"\n").expect("write");
        assert!(watcher.check().await.is_empty());
        assert_eq!(live.get().cache.ttl_secs, 61);
        std::fs::write(&path, "[cache]\nttl_secs = 62\n").expect("write");
        assert_eq!(watcher.check().await, ["cache.ttl_secs"]);
        assert_eq!(live.get().cache.ttl_secs, 62);
        let _ = std::fs::remove_file(&path);
    }
}
