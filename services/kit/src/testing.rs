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
    /// A fresh namespace whose revocation list counts as restored (as the user service marks
    /// it; tests of one service have no user service to do it).
    pub fn new() -> Self {
        let ns = Self {
            prefix: format!("test:{}:", Uuid::new_v4().simple()),
        };
        ns.mark_revocations_ready();
        ns
    }

    /// Sets the key that says the revocation list is complete (see
    /// [`crate::auth::revocations_ready_key`]).
    pub fn mark_revocations_ready(&self) {
        let key = format!(
            "{}{}",
            self.prefix,
            crate::auth::REVOCATIONS_READY.join(":")
        );
        if let Ok(mut conn) = redis::Client::open(redis_url()).and_then(|c| c.get_connection()) {
            let _: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg(1).query(&mut conn);
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
/// An HTTP server on 127.0.0.1, on a port the OS picks.
pub fn local_http() -> crate::HttpSettings {
    crate::HttpSettings {
        host: "127.0.0.1".into(),
        port: 0,
        ..crate::HttpSettings::default()
    }
}

/// `SELECT <one bigint>` against `db`.
pub async fn scalar(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db)
        .await
        .expect("the scalar query runs")
}

/// The envelopes of `event_type` that a service emitted (its outbox), oldest first; each went
/// (or goes) to `topic`, keyed by the envelope's key.
pub async fn emitted(
    db: &PgPool,
    topic: &str,
    event_type: &str,
) -> Vec<crate::messaging::Envelope> {
    let rows: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT topic, key, envelope FROM outbox WHERE event_type = $1 ORDER BY created_at, id",
    )
    .bind(event_type)
    .fetch_all(db)
    .await
    .expect("the outbox reads");
    rows.into_iter()
        .map(|(to, key, envelope)| {
            assert_eq!(to, topic, "{event_type} goes to {topic}");
            let envelope: crate::messaging::Envelope =
                serde_json::from_value(envelope).expect("an envelope");
            assert_eq!(envelope.key, key, "the message key is the envelope's");
            envelope
        })
        .collect()
}

pub fn auth_settings() -> AuthSettings {
    let (signing_key, public_key) = crate::auth::generate_key_pair().expect("key pair");
    let (service_key, service_public) = test_service_key();
    AuthSettings {
        public_key,
        signing_key: Secret::new(signing_key),
        service_key: Secret::new(service_key),
        service_keys: crate::topology::COMPONENTS
            .iter()
            .map(|c| c.name)
            .chain([crate::credential::COMMAND])
            .map(|name| (name.to_owned(), service_public.clone()))
            .collect(),
        ..AuthSettings::default()
    }
}

/// The service key pair of every service in tests: one key for all names, so any in-process
/// service can call any other; which *name* a credential claims is still checked against each
/// route's callers. `(private, public)`.
pub fn test_service_key() -> (String, String) {
    static KEY: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    KEY.get_or_init(|| crate::auth::generate_key_pair().expect("key pair"))
        .clone()
}

/// A service's internal routes as its tests call them: each request carries the credential
/// of the first caller its route names in the service's document — the callers read once from
/// `document` (the service's `openapi`), as the service's own guard reads them.
///
/// `static CALLERS: InternalCallers = InternalCallers::new("item", kommerce_item::openapi);`
#[derive(Debug)]
pub struct InternalCallers {
    service: &'static str,
    document: fn() -> utoipa::openapi::OpenApi,
    policy: std::sync::OnceLock<crate::credential::Policy>,
}

impl InternalCallers {
    pub const fn new(service: &'static str, document: fn() -> utoipa::openapi::OpenApi) -> Self {
        Self {
            service,
            document,
            policy: std::sync::OnceLock::new(),
        }
    }

    /// `request` (to `method path`) with the credential its route needs, if any.
    pub fn attach(
        &self,
        request: reqwest::RequestBuilder,
        method: &reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let policy = self
            .policy
            .get_or_init(|| crate::credential::Policy::from_document(&(self.document)()));
        let caller = method
            .as_str()
            .parse::<axum::http::Method>()
            .ok()
            .and_then(|m| policy.callers_of_path(&m, path)?.first().cloned());
        match caller {
            Some(caller) => request.header(
                crate::credential::HEADER,
                service_credential(&caller, self.service),
            ),
            None => request,
        }
    }
}

/// A service credential `caller` → `audience`, as [`auth_settings`] services accept.
pub fn service_credential(caller: &str, audience: &str) -> String {
    crate::credential::credential(
        &test_service_key().0,
        caller,
        audience,
        std::time::Duration::from_secs(60),
    )
    .expect("a credential")
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

/// Reads an error response: its status and problem+json body. Panics unless the content type
/// is `application/problem+json` and the body's `status` is the response's.
pub async fn problem(response: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        content_type,
        crate::http::PROBLEM_JSON,
        "status {status}: not a problem+json response"
    );
    let body: serde_json::Value = response.json().await.expect("a problem+json body");
    assert_eq!(
        body["status"],
        status.as_u16(),
        "the problem's status is the response's: {body}"
    );
    (status, body)
}

/// Checks the answer to `GET /openapi.json`: 200 `application/json`, exactly `expected` (the
/// service's `openapi()`), naming exactly the `routes` (`("GET", "/api/v1/x/{id}")`). With
/// `-- --nocapture` the document is printed.
pub async fn assert_serves_document(
    response: reqwest::Response,
    expected: &utoipa::openapi::OpenApi,
    routes: &[(&str, &str)],
) {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let served: serde_json::Value = response.json().await.expect("a JSON document");
    println!(
        "{}",
        serde_json::to_string_pretty(&served).unwrap_or_default()
    );
    assert_eq!(
        served,
        serde_json::to_value(expected).expect("a document serializes")
    );
    let paths = served["paths"].as_object().expect("paths");
    let named: std::collections::BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .into_iter()
                .filter(|m| item.get(*m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routes: std::collections::BTreeSet<(String, String)> = routes
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(named, routes);
}

/// The field names a problem's `errors` name, in order (empty without `errors`).
pub fn fields(problem: &serde_json::Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().expect("a field name").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Serves `router` on a port of its own (127.0.0.1, picked by the kernel) until the test's
/// runtime ends; returns its base URL, `http://127.0.0.1:PORT`. For stand-ins of a service's
/// peers. The listener is bound before the URL exists and is the one served, so nothing else
/// can take the port in between.
pub async fn serve_stub(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port for a stub");
    let address = listener.local_addr().expect("the stub's address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the stub serves");
    });
    format!("http://{address}")
}

/// A port of 127.0.0.1 held for something that must bind it itself, and perhaps more than
/// once: a service given a fixed port in its settings (and restarted on it), or a child
/// process such as a broker.
///
/// The port is picked by the kernel (bind to port 0) and stays bound, by a socket with
/// `SO_REUSEADDR` that never listens, for as long as this value lives. While it is held the
/// kernel hands the port to no one else — not to another bind to port 0, not as the source
/// port of an outgoing connection, not to a bind without `SO_REUSEADDR` — yet a server that
/// binds with `SO_REUSEADDR` (tokio's `TcpListener::bind`, which every service uses, and
/// Java's server sockets) can bind it and listen, as often as it restarts. (Linux semantics;
/// this is where the tests run.) Better than "bind, free the port and hope": nothing can take
/// the port between the pick and the server's bind, or while the server is stopped.
#[derive(Debug)]
pub struct ReservedPort {
    port: u16,
    _socket: tokio::net::TcpSocket,
}

impl ReservedPort {
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A fresh [`ReservedPort`].
pub fn reserve_port() -> ReservedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .set_reuseaddr(true)
        .expect("SO_REUSEADDR on the reservation");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind a port to reserve");
    let port = socket.local_addr().expect("the reserved port").port();
    ReservedPort {
        port,
        _socket: socket,
    }
}

/// Puts events on the broker as the service that owns them would: through an outbox of its
/// own (a throwaway database with the kit's messaging tables) and the kit's relay. For
/// testing a consumer without running the producing service.
#[derive(Debug)]
pub struct Publisher {
    db: TestDatabase,
    relay: crate::messaging::Relay,
}

impl Publisher {
    /// A publisher on the broker and namespace of `kafka`.
    pub async fn new(kafka: &crate::KafkaSettings) -> Self {
        let db = TestDatabase::create(&[&crate::messaging::MIGRATOR]).await;
        let relay = crate::messaging::Relay::new(db.pool.clone(), kafka).expect("a relay");
        Self { db, relay }
    }

    /// Publishes `envelope` to `topic` (the full name: `KafkaSettings::topic`) and returns once
    /// the broker has acknowledged it.
    pub async fn publish(&self, topic: &str, envelope: &crate::messaging::Envelope) {
        let mut tx = self.db.pool.begin().await.expect("begin");
        crate::messaging::publish_in_tx(&mut tx, topic, envelope)
            .await
            .expect("the event is in the outbox");
        tx.commit().await.expect("commit");
        eventually(
            "the event is on the broker",
            std::time::Duration::from_secs(60),
            || async {
                self.relay.drain_once().await.expect("the relay runs");
                let pending: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                        .fetch_one(&self.db.pool)
                        .await
                        .expect("count pending events");
                pending == 0
            },
        )
        .await;
    }

    /// Wraps `event` in a new envelope and publishes it to `topic`; returns the envelope.
    pub async fn event<E: crate::messaging::Event>(
        &self,
        topic: &str,
        event: &E,
    ) -> crate::messaging::Envelope {
        let envelope = crate::messaging::Envelope::new(event).expect("the event serialises");
        self.publish(topic, &envelope).await;
        envelope
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;
    use crate::http::ApiError;

    #[tokio::test]
    async fn a_reserved_port_is_no_one_elses_but_a_server_can_bind_it_again_and_again() {
        let reserved = reserve_port();
        let at = std::net::SocketAddr::from(([127, 0, 0, 1], reserved.port()));
        let plain = tokio::net::TcpSocket::new_v4().unwrap();
        assert!(
            plain.bind(at).is_err(),
            "a bind without SO_REUSEADDR is refused"
        );
        for round in 0..2 {
            let server = tokio::net::TcpListener::bind(at).await.unwrap();
            let client = tokio::net::TcpStream::connect(at).await.unwrap();
            let (_accepted, from) = server.accept().await.unwrap();
            assert_eq!(from, client.local_addr().unwrap(), "round {round}");
        }
    }

    #[tokio::test]
    async fn a_stub_serves_and_problems_are_read_with_their_fields() {
        let base = serve_stub(Router::new().route("/ok", get(|| async { "fine" })).route(
            "/bad",
            get(|| async { ApiError::field("qty", "must be from 1 to 99") }),
        ))
        .await;
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let ok = reqwest::get(format!("{base}/ok")).await.unwrap();
        assert_eq!(ok.text().await.unwrap(), "fine");
        let (status, body) = problem(reqwest::get(format!("{base}/bad")).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&body), ["qty"]);
        assert!(fields(&serde_json::json!({"status": 404})).is_empty());
    }
}
