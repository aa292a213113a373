//! Test support (feature `testing`): every test gets its own PostgreSQL database and its own
//! Redis key prefix on the real servers, so tests run in parallel and never see each other's
//! data. Both are removed when the guard drops.

use sqlx::migrate::Migrator;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::db::with_database_name;
use crate::{AuthSettings, DatabaseSettings, RedisSettings, Secret};

/// The server tests create their databases on (`KOMMERCE_TEST_DATABASE_URL`).
pub fn admin_database_url() -> String {
    std::env::var("KOMMERCE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis tests use (`KOMMERCE_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("KOMMERCE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A throwaway database with the service's migrations applied, dropped on `Drop`.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDatabase {
    /// A fresh database with `migrations` applied (a service's `MIGRATIONS`).
    pub async fn create(migrations: &[&Migrator]) -> Self {
        let migrator = crate::db::merged_migrator(migrations)
            .await
            .expect("migrations merge");
        let admin = admin_database_url();
        let name = format!("kommerce_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL must be running: run scripts/deps.sh");
        conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = with_database_name(&admin, &name);
        let pool = PgPool::connect(&url)
            .await
            .expect("connect to test database");
        migrator.run(&pool).await.expect("migrations apply");
        Self { name, url, pool }
    }

    /// Settings pointing a service at this database (migrations already ran).
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: Secret::new(self.url.clone()),
            max_connections: 5,
            migrate: false,
            ..DatabaseSettings::default()
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = admin_database_url();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// A unique Redis key prefix, whose keys are deleted on `Drop`.
#[derive(Debug)]
pub struct RedisNamespace {
    pub prefix: String,
}

impl RedisNamespace {
    pub fn new() -> Self {
        Self {
            prefix: format!("test:{}:", Uuid::new_v4().simple()),
        }
    }

    pub fn settings(&self) -> RedisSettings {
        RedisSettings {
            url: Secret::new(redis_url()),
            key_prefix: self.prefix.clone(),
        }
    }
}

impl Default for RedisNamespace {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.prefix);
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<u64> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

/// Auth settings with a fresh key pair (the signing key included, as the user service has).
pub fn auth_settings() -> AuthSettings {
    let (signing_key, public_key) = crate::auth::generate_key_pair().expect("key pair");
    AuthSettings {
        public_key,
        signing_key: Secret::new(signing_key),
        ..AuthSettings::default()
    }
}

/// Kafka settings for one test: the local broker, a namespace of its own (so tests sharing the
/// broker never read each other's topics or join each other's groups), fast retries.
pub fn kafka_settings() -> crate::KafkaSettings {
    crate::KafkaSettings {
        bootstrap_servers: std::env::var("KOMMERCE_TEST_KAFKA")
            .unwrap_or_else(|_| "127.0.0.1:9092".into()),
        namespace: format!("t{}", Uuid::new_v4().simple()),
        retry_backoff_ms: 20,
        retry_backoff_max_ms: 200,
        relay_poll_ms: 200,
        ..crate::KafkaSettings::default()
    }
}

/// Polls `check` until it holds; panics naming `what` once `limit` has passed. For states
/// reached asynchronously (a consumer's effect, an acknowledgement) — never a sleep.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: std::time::Duration,
    mut check: impl FnMut() -> F,
) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
