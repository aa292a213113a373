//! A whole shop for cross-service tests: user, item, order and pay running in this process on
//! real PostgreSQL (a database each), Redis and Apache Kafka (a Kafka namespace of its
//! own), calling each other over HTTP exactly as they do under `kommerce up`.

#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::future::Future;
use std::time::Duration;

use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::messaging::Hooks;
use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings, kafka_settings};
use kommerce_kit::{AuthSettings, HttpSettings, KafkaSettings, PeersSettings, Secret};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

pub use kommerce_kit::testing::eventually;

pub const WAIT: Duration = Duration::from_secs(60);

/// A running service: its base URL and how to stop it.
struct Running {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    fn start<F>(port: u16, run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let fut = run(rx);
        let done = tokio::spawn(async move {
            fut.await.unwrap();
        });
        Self {
            base: format!("http://127.0.0.1:{port}"),
            stop: Some(tx),
            done: Some(done),
        }
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap();
        }
    }
}

async fn stop_on(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// A port for a service, known before it starts: order and pay call each other, so each must
/// be told the other's port before either binds, and `start_order`/`start_pay` restart a
/// service on the same port. `App::build` binds the port itself and takes no listener (and
/// the inherited-socket path, `LISTEN_FDS`, is one per process), so the port cannot be handed
/// over as a bound listener. Instead it stays reserved (`ReservedPort`: bound with
/// SO_REUSEADDR, never listening) until the test process exits: nothing else — another
/// test's port-0 bind, an outgoing connection's source port — can take it between the pick
/// and the service's bind, or while the service is stopped, and the service's own
/// SO_REUSEADDR listener binds it each time. A few ports per shop; they end with the process.
fn free_port() -> u16 {
    static RESERVED: std::sync::Mutex<Vec<kommerce_kit::testing::ReservedPort>> =
        std::sync::Mutex::new(Vec::new());
    let reserved = kommerce_kit::testing::reserve_port();
    let port = reserved.port();
    RESERVED.lock().unwrap().push(reserved);
    port
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Partitions of the saga topics.
    pub partitions: i32,
    /// Consumers per saga service.
    pub consumers: u32,
    /// How often the simulated card declines (0.0 never, 1.0 always).
    pub card_failure_rate: f64,
    /// The saga's deadline for a payment waiting for its order (pay's `saga.deadline_secs`).
    pub deadline_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            partitions: 3,
            consumers: 3,
            card_failure_rate: 0.0,
            deadline_secs: 300,
        }
    }
}

pub struct Shop {
    pub http: Client,
    pub user_db: TestDatabase,
    pub item_db: TestDatabase,
    pub order_db: TestDatabase,
    pub pay_db: TestDatabase,
    _redis: RedisNamespace,
    pub kafka: KafkaSettings,
    auth: AuthSettings,
    signer: TokenSigner,
    pub admin: String,
    redis_settings: kommerce_kit::RedisSettings,
    peers: PeersSettings,
    opts: Options,
    user: Running,
    item: Running,
    order: Running,
    pay: Running,
    /// The local router of `kommerce up`: every public request goes through it.
    router: String,
    /// 503 answers retried by [`Shop::send`].
    pub retries: std::sync::atomic::AtomicUsize,
}

/// A customer with a default address and a token.
pub use kommerce::bench::Shopper;

fn http_settings(port: u16) -> HttpSettings {
    HttpSettings {
        host: "127.0.0.1".into(),
        port,
        request_timeout_ms: 120_000,
        ..HttpSettings::default()
    }
}

fn db_settings(db: &TestDatabase) -> kommerce_kit::DatabaseSettings {
    // Four services per test and two tests at a time stay well under PostgreSQL's default
    // 100 connections.
    let mut s = db.settings();
    s.max_connections = 8;
    s.acquire_timeout_ms = 20_000;
    s
}

impl Shop {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        kommerce_kit::telemetry::init(
            "e2e",
            &kommerce_kit::TelemetrySettings {
                log_filter: "warn".into(),
                json: false,
            },
        );
        let user_db = TestDatabase::create(kommerce_user::MIGRATIONS).await;
        let item_db = TestDatabase::create(kommerce_item::MIGRATIONS).await;
        let order_db = TestDatabase::create(kommerce_order::MIGRATIONS).await;
        let pay_db = TestDatabase::create(kommerce_pay::MIGRATIONS).await;
        let redis = RedisNamespace::new();
        let auth = auth_settings();
        let verify_only = AuthSettings {
            signing_key: Secret::default(),
            ..auth.clone()
        };
        let mut kafka = kafka_settings();
        kafka.partitions = opts.partitions;
        let ports = [free_port(), free_port(), free_port(), free_port()];
        let local = |p: u16| format!("http://127.0.0.1:{p}");
        let peers = PeersSettings {
            user: local(ports[0]),
            item: local(ports[1]),
            order: local(ports[2]),
            pay: local(ports[3]),
            // The load test queues a thousand calls at once on two cores.
            timeout_ms: 60_000,
            ..PeersSettings::default()
        };

        let user = kommerce_user::App::build(kommerce_user::Settings {
            http: http_settings(ports[0]),
            database: db_settings(&user_db),
            redis: redis.settings(),
            auth: auth.clone(),
            ..kommerce_user::Settings::default()
        })
        .await
        .unwrap();
        let user = Running::start(ports[0], |rx| user.run_until(stop_on(rx)));
        let mut item_settings = kommerce_item::Settings {
            http: http_settings(ports[1]),
            database: db_settings(&item_db),
            redis: redis.settings(),
            auth: verify_only.clone(),
            kafka: kafka.clone(),
            peers: peers.clone(),
            ..kommerce_item::Settings::default()
        };
        item_settings.stock.instance_id = Some(format!("e2e-{}", Uuid::new_v4()));
        let item = kommerce_item::App::build(item_settings).await.unwrap();
        let item = Running::start(ports[1], |rx| item.run_until(stop_on(rx)));

        let signer = TokenSigner::new(&auth).unwrap();
        let admin = signer
            .sign(Uuid::new_v4(), Role::Admin, Uuid::new_v4())
            .unwrap()
            .0;
        let mut shop = Self {
            http: Client::new(),
            user_db,
            item_db,
            order_db,
            pay_db,
            kafka,
            auth: verify_only,
            signer,
            admin,
            redis_settings: redis.settings(),
            _redis: redis,
            peers,
            opts,
            user,
            item,
            order: Running {
                base: String::new(),
                stop: None,
                done: None,
            },
            pay: Running {
                base: String::new(),
                stop: None,
                done: None,
            },
            router: String::new(),
            retries: std::sync::atomic::AtomicUsize::new(0),
        };
        let upstreams = std::collections::HashMap::from([
            ("user", format!("127.0.0.1:{}", ports[0])),
            ("item", format!("127.0.0.1:{}", ports[1])),
            ("order", format!("127.0.0.1:{}", ports[2])),
            ("pay", format!("127.0.0.1:{}", ports[3])),
        ]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        shop.router = format!("http://{}", listener.local_addr().unwrap());
        let router = kommerce::router::router(kommerce::topology::SERVICES, upstreams);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        shop.start_order(Hooks::default()).await;
        shop.start_pay().await;
        shop
    }

    fn order_settings(&self) -> kommerce_order::Settings {
        let mut s = kommerce_order::Settings {
            http: http_settings(port_of(&self.peers.order)),
            database: db_settings(&self.order_db),
            redis: self.redis_settings.clone(),
            auth: self.auth.clone(),
            kafka: self.kafka.clone(),
            peers: self.peers.clone(),
            ..kommerce_order::Settings::default()
        };
        s.saga.consumers = self.opts.consumers;
        s
    }

    /// (Re)starts the order service, with failpoints in its consumers.
    pub async fn start_order(&mut self, hooks: Hooks) {
        self.start_order_gated(hooks, None).await;
    }

    /// (Re)starts the order service; with a `gate`, every reserved order waits for a permit
    /// before it is made.
    pub async fn start_order_gated(
        &mut self,
        hooks: Hooks,
        gate: Option<std::sync::Arc<tokio::sync::Semaphore>>,
    ) {
        let app = kommerce_order::App::build_gated(self.order_settings(), hooks, gate)
            .await
            .unwrap();
        self.order = Running::start(app.port(), |rx| app.run_until(stop_on(rx)));
    }

    pub async fn stop_order(&mut self) {
        self.order.stop().await;
    }

    pub async fn start_pay(&mut self) {
        let mut s = kommerce_pay::Settings {
            http: http_settings(port_of(&self.peers.pay)),
            database: db_settings(&self.pay_db),
            redis: self.redis_settings.clone(),
            auth: self.auth.clone(),
            kafka: self.kafka.clone(),
            peers: self.peers.clone(),
            ..kommerce_pay::Settings::default()
        };
        s.saga.consumers = self.opts.consumers;
        s.card.failure_rate = self.opts.card_failure_rate;
        s.card.latency_ms = 20;
        s.saga.deadline_secs = self.opts.deadline_secs;
        s.saga.deadline_check_ms = 100;
        let app = kommerce_pay::App::build(s).await.unwrap();
        self.pay = Running::start(app.port(), |rx| app.run_until(stop_on(rx)));
    }

    pub async fn stop_pay(&mut self) {
        self.pay.stop().await;
    }

    /// A request through the router, which sends it to the service that owns `path`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Response {
        let request = Request {
            method,
            path,
            token,
            body,
            key,
        };
        send(&self.http, &self.router, &request, &self.retries).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self.send(Method::GET, path, Some(token), None, None).await;
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .send(Method::POST, path, Some(token), Some(body), None)
            .await;
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// An item on sale at `price` with `stock` units.
    pub async fn item(&self, price: i64, stock: i64) -> Uuid {
        let (s, cat) = self
            .post(
                "/api/v1/categories",
                &self.admin,
                &json!({"name": format!("Cat {}", Uuid::new_v4().simple())}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{cat}");
        let (s, item) = self
            .post(
                "/api/v1/items",
                &self.admin,
                &json!({"name": "Widget", "description": "A widget", "price_minor": price,
                        "category_id": cat["id"], "stock": stock}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{item}");
        item["id"].as_str().unwrap().parse().unwrap()
    }

    /// `n` customers with a default address each ([`insert_shoppers`]) and `balance` in their
    /// wallets (topped up through the API; none for 0).
    pub async fn shoppers(&self, n: usize, balance: i64) -> Vec<Shopper> {
        let shoppers = insert_shoppers(&self.user_db.pool, &self.signer, n).await;
        let top_ups = shoppers.iter().map(|s| async move {
            let (status, body) = self
                .post(
                    "/api/v1/wallet/top-up",
                    &s.token,
                    &json!({"amount_minor": balance}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        });
        if balance > 0 {
            futures::future::join_all(top_ups).await;
        }
        shoppers
    }

    pub async fn shopper(&self, balance: i64) -> Shopper {
        self.shoppers(1, balance).await.remove(0)
    }

    /// Adds to the cart; returns the cart line id.
    pub async fn add_to_cart(&self, s: &Shopper, item: Uuid, qty: i64) -> Uuid {
        let (status, line) = self
            .post(
                "/api/v1/cart/items",
                &s.token,
                &json!({"item_id": item, "qty": qty}),
            )
            .await;
        assert!(status.is_success(), "{status} {line}");
        line["id"].as_str().unwrap().parse().unwrap()
    }

    /// `POST /api/v1/payments` with `method`.
    pub async fn pay_by(
        &self,
        s: &Shopper,
        lines: &[Uuid],
        amount: i64,
        key: &str,
        method: &str,
    ) -> (StatusCode, Value) {
        let body = json!({"cart_line_ids": lines, "address_id": s.address_id,
                          "amount_minor": amount, "method": method});
        let r = self
            .send(
                Method::POST,
                "/api/v1/payments",
                Some(&s.token),
                Some(&body),
                Some(key),
            )
            .await;
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/v1/payments` with the wallet.
    pub async fn pay(
        &self,
        s: &Shopper,
        lines: &[Uuid],
        amount: i64,
        key: &str,
    ) -> (StatusCode, Value) {
        self.pay_by(s, lines, amount, key, "wallet").await
    }

    pub async fn payment(&self, s: &Shopper, id: &str) -> Value {
        let (status, p) = self.get(&format!("/api/v1/payments/{id}"), &s.token).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        p
    }

    /// The order's saga timeline as `(service, step)`, oldest first.
    pub async fn timeline(&self, s: &Shopper, order: &str) -> Vec<(String, String)> {
        let (status, timeline) = self
            .get(&format!("/api/v1/orders/{order}/timeline"), &s.token)
            .await;
        assert_eq!(status, StatusCode::OK, "{timeline}");
        timeline["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["service"].as_str().unwrap().into(),
                    s["step"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    /// Waits until the payment is no longer `pending_order`; returns it.
    pub async fn settled(&self, s: &Shopper, id: &str) -> Value {
        eventually("the payment settles", WAIT, || async {
            self.payment(s, id).await["status"] != "pending_order"
        })
        .await;
        self.payment(s, id).await
    }

    pub async fn balance(&self, s: &Shopper) -> i64 {
        self.get("/api/v1/wallet", &s.token).await.1["balance_minor"]
            .as_i64()
            .unwrap()
    }

    /// The item's stock as the item service reports it to other services.
    pub async fn stock(&self, item: Uuid) -> i64 {
        let body: Value = self
            .http
            .get(format!("{}/internal/v1/items?ids={item}", self.item.base))
            // Asked as the order service asks it.
            .header(
                kommerce_kit::credential::HEADER,
                kommerce_kit::testing::service_credential("order", "item"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["items"][0]["stock"].as_i64().unwrap()
    }

    pub fn pools(&self) -> (&PgPool, &PgPool) {
        (&self.order_db.pool, &self.pay_db.pool)
    }

    /// A client of `group` that reads and writes its committed offsets, never consuming.
    fn group_client(&self, group: &str) -> BaseConsumer {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .set("group.id", self.kafka.group(group))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    }

    /// Waits until both saga outboxes have sent every row.
    pub async fn outboxes_drained(&self) {
        let pending = "SELECT count(*) FROM outbox WHERE sent_at IS NULL";
        eventually("outboxes drained", WAIT, || async {
            scalar(&self.order_db.pool, pending).await == 0
                && scalar(&self.pay_db.pool, pending).await == 0
        })
        .await;
    }

    /// Records on `topic`: its partitions' high watermarks summed.
    pub fn published(&self, topic: &str) -> i64 {
        let c = self.group_client("watermarks");
        (0..self.opts.partitions)
            .map(|p| {
                c.fetch_watermarks(&self.kafka.topic(topic), p, Duration::from_secs(10))
                    .unwrap()
                    .1
            })
            .sum()
    }

    /// Messages the group has committed past, over every partition of `topic`.
    pub fn committed(&self, group: &str, topic: &str) -> i64 {
        let c = self.group_client(group);
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.opts.partitions {
            tpl.add_partition(&self.kafka.topic(topic), p);
        }
        let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        got.elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .sum()
    }

    /// Moves `group` back to offset 0 of `topic` (its consumers must be stopped).
    pub fn rewind(&self, group: &str, topic: &str) {
        let c = self.group_client(group);
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.opts.partitions {
            tpl.add_partition_offset(&self.kafka.topic(topic), p, Offset::Offset(0))
                .unwrap();
        }
        c.commit(&tpl, CommitMode::Sync).unwrap();
    }
}

/// One API request.
pub struct Request<'a> {
    pub method: Method,
    pub path: &'a str,
    pub token: Option<&'a str>,
    pub body: Option<&'a Value>,
    pub key: Option<&'a str>,
}

/// Sends `request` to `base` as a well-behaved client does: a 503 changed nothing and says when
/// to come back (bursts of a thousand requests on two cores do meet one), so it is sent again,
/// with the same Idempotency-Key, after `Retry-After`; each retry is counted in `retries`.
pub async fn send(
    http: &Client,
    base: &str,
    request: &Request<'_>,
    retries: &std::sync::atomic::AtomicUsize,
) -> Response {
    for _ in 0..10 {
        let mut r = http.request(request.method.clone(), format!("{base}{}", request.path));
        if let Some(t) = request.token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = request.body {
            r = r.json(b);
        }
        if let Some(k) = request.key {
            r = r.header("Idempotency-Key", k);
        }
        let response = r.send().await.unwrap();
        if response.status() != StatusCode::SERVICE_UNAVAILABLE {
            return response;
        }
        retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    panic!("{}: still 503 after 10 attempts", request.path);
}

/// `n` customers with a default address each, written straight to the user database (hashing
/// a thousand passwords would test argon2, not the saga), with tokens from `signer`.
pub async fn insert_shoppers(user_db: &PgPool, signer: &TokenSigner, n: usize) -> Vec<Shopper> {
    kommerce::bench::insert_shoppers(user_db, signer, n)
        .await
        .unwrap()
}

/// After `buyers` one-unit checkouts of an item with `units` in stock, by shoppers who each had
/// `balance`: exactly `units` orders, every other payment cancelled and refunded once, and the
/// money adds up — read from the databases, not from the answers.
pub async fn assert_the_books_balance(
    order_db: &PgPool,
    pay_db: &PgPool,
    buyers: i64,
    units: i64,
    balance: i64,
) {
    assert_eq!(scalar(order_db, "SELECT count(*) FROM orders").await, units);
    assert_eq!(
        scalar(
            pay_db,
            "SELECT count(*) FROM payments WHERE status = 'completed'"
        )
        .await,
        units
    );
    assert_eq!(
        scalar(
            pay_db,
            "SELECT count(*) FROM payments WHERE status = 'cancelled'"
        )
        .await,
        buyers - units
    );
    assert_eq!(
        scalar(pay_db, "SELECT count(*) FROM refunds").await,
        buyers - units
    );
    let debits = scalar(
        pay_db,
        "SELECT -sum(delta_minor)::bigint FROM wallet_entries WHERE kind = 'charge'",
    )
    .await;
    let refunds = scalar(
        pay_db,
        "SELECT coalesce(sum(delta_minor), 0)::bigint FROM wallet_entries WHERE kind = 'refund'",
    )
    .await;
    let totals = scalar(
        order_db,
        "SELECT coalesce(sum(total_minor), 0)::bigint FROM orders",
    )
    .await;
    assert_eq!(debits - refunds, totals);
    assert_eq!(
        scalar(pay_db, "SELECT sum(balance_minor)::bigint FROM wallets").await,
        balance * buyers - totals
    );
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

pub use kommerce_kit::testing::scalar;
