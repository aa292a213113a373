//! Redis: one multiplexed, auto-reconnecting connection per service, and the key namespace.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::RedisSettings;

/// A Redis connection plus the deployment's key prefix. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    pub async fn connect(settings: &RedisSettings) -> redis::RedisResult<Self> {
        let client = redis::Client::open(settings.url.expose())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            prefix: settings.key_prefix.clone(),
        })
    }

    /// The deployment's key prefix (e.g. `kommerce:`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix><parts joined by ':'>`, e.g. `key(&["auth", "deny", jti])`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        key.push_str(&parts.join(":"));
        key
    }

    /// A fresh handle to the shared connection for one operation.
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Whether Redis answers. The shared connection notices that Redis restarted only when a
    /// command fails on the dead socket, and reconnects then: a dropped connection is tried
    /// once more, so a restart Redis has recovered from does not fail a readiness probe.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let ping = || async {
            redis::cmd("PING")
                .query_async::<String>(&mut self.conn())
                .await
                .map(drop)
        };
        match ping().await {
            Err(e) if e.is_connection_dropped() || e.is_io_error() => ping().await,
            other => other,
        }
    }
}
