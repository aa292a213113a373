//! The order service spawned on port 0 with its own PostgreSQL database, Redis namespace and
//! Kafka namespace; its peers — item (catalogue, stock reservations) and pay (its half of the
//! saga timeline) — are stubs on ports of their own, whose answers a test sets and whose calls
//! it reads. Events from pay are published into the payments topic through an outbox of their
//! own, as pay would.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use kommerce_contracts::item::{
    ItemView, ItemViews, RefusalReason, RefusedLine, ReservationRefused, ReservationRequest,
};
use kommerce_contracts::money::{Money, Quantity};
use kommerce_contracts::saga::{ORDERS_TOPIC, PAYMENTS_TOPIC, PaidLine, PaymentCompleted};
use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::messaging::{Envelope, Event};
use kommerce_kit::testing::{
    Publisher, RedisNamespace, TestDatabase, auth_settings, kafka_settings, serve_stub,
};
use kommerce_kit::{KafkaSettings, PeersSettings};
use kommerce_order::{App, MIGRATIONS, Settings};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// How long an asynchronous outcome (a consumed event) may take: a consumer group joining on
/// a broker shared by parallel tests is slow.
pub const WAIT: Duration = Duration::from_secs(60);

/// The kit's `eventually` with this suite's limit.
pub async fn eventually<F: Future<Output = bool>>(what: &str, check: impl FnMut() -> F) {
    kommerce_kit::testing::eventually(what, WAIT, check).await;
}

pub struct User {
    pub id: Uuid,
    pub token: String,
}

/// The item service as order sees it (its side of `kommerce_contracts::item`):
/// `GET /internal/v1/items?ids=`, and stock reservations that are granted, or refused with a
/// reason on every line.
#[derive(Default)]
pub struct ItemStub {
    items: Mutex<HashMap<Uuid, ItemView>>,
    /// Reservations still to be answered 503 (an outage) before the stub answers again.
    outage: Mutex<usize>,
    refusal: Mutex<Option<RefusalReason>>,
    reservations: Mutex<Vec<ReservationRequest>>,
    releases: Mutex<Vec<Uuid>>,
}

impl ItemStub {
    /// Puts an item on sale at `price` with `stock` units.
    pub fn on_sale(&self, name: &str, price: i64, stock: i64) -> Uuid {
        let id = Uuid::now_v7();
        self.items.lock().unwrap().insert(
            id,
            ItemView {
                id,
                name: name.to_owned(),
                price_minor: Money::minor(price),
                status: "on_sale".to_owned(),
                stock,
                deleted: false,
            },
        );
        id
    }

    /// Sets an item's `status` (`on_sale`, `sold_out`, `hidden`).
    pub fn set_status(&self, id: Uuid, status: &str) {
        status.clone_into(&mut self.items.lock().unwrap().get_mut(&id).unwrap().status);
    }

    pub fn delete(&self, id: Uuid) {
        self.items.lock().unwrap().get_mut(&id).unwrap().deleted = true;
    }

    /// From now on every reservation is refused (409) with `reason` on each line.
    pub fn refuse(&self, reason: RefusalReason) {
        *self.refusal.lock().unwrap() = Some(reason);
    }

    /// The next `n` reservations are answered 503, as by an item service that is down.
    pub fn fail_next(&self, n: usize) {
        *self.outage.lock().unwrap() = n;
    }

    /// The reservation requests received, in order.
    pub fn reservations(&self) -> Vec<ReservationRequest> {
        self.reservations.lock().unwrap().clone()
    }

    /// The reservation ids released, in order.
    pub fn releases(&self) -> Vec<Uuid> {
        self.releases.lock().unwrap().clone()
    }

    fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/internal/v1/items", get(Self::items))
            .route("/internal/v1/stock/reservations", post(Self::reserve))
            .route(
                "/internal/v1/stock/reservations/{id}",
                delete(Self::release),
            )
            .with_state(self.clone())
    }

    #[allow(clippy::unused_async)] // an axum handler
    async fn items(
        State(stub): State<Arc<Self>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Json<ItemViews> {
        let known = stub.items.lock().unwrap();
        let items = q
            .get("ids")
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .filter_map(|id| id.parse::<Uuid>().ok())
            .filter_map(|id| known.get(&id).cloned())
            .collect();
        Json(ItemViews { items })
    }

    /// 201, or the item service's 409: a problem naming every line that cannot be had.
    #[allow(clippy::unused_async)] // an axum handler
    async fn reserve(
        State(stub): State<Arc<Self>>,
        Json(request): Json<ReservationRequest>,
    ) -> Response {
        stub.reservations.lock().unwrap().push(request.clone());
        {
            let mut outage = stub.outage.lock().unwrap();
            if *outage > 0 {
                *outage -= 1;
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
        let refusal = *stub.refusal.lock().unwrap();
        match refusal {
            None => (
                StatusCode::CREATED,
                Json(json!({"reservation_id": request.reservation_id, "status": "reserved", "lines": request.lines})),
            )
                .into_response(),
            Some(reason) => {
                let refused = ReservationRefused {
                    reservation_id: request.reservation_id,
                    detail: "not every line can be reserved; nothing was reserved".into(),
                    lines: request
                        .lines
                        .iter()
                        .map(|l| RefusedLine {
                            item_id: l.item_id,
                            reason,
                            requested: Quantity::new(i32::try_from(l.qty).unwrap()),
                            available: Some(0),
                        })
                        .collect(),
                };
                let mut body = serde_json::to_value(refused).unwrap();
                body["type"] = json!("https://kommerce.dev/problems/reservation-refused");
                body["title"] = json!("Conflict");
                body["status"] = json!(409);
                (
                    StatusCode::CONFLICT,
                    [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
                    Json(body),
                )
                    .into_response()
            }
        }
    }

    #[allow(clippy::unused_async)] // an axum handler
    async fn release(State(stub): State<Arc<Self>>, Path(id): Path<Uuid>) -> StatusCode {
        stub.releases.lock().unwrap().push(id);
        StatusCode::NO_CONTENT
    }
}

/// The pay service's saga timeline: the steps it answers for any id.
#[derive(Default)]
pub struct PayStub {
    steps: Mutex<Vec<Value>>,
}

impl PayStub {
    pub fn add_step(&self, step: Value) {
        self.steps.lock().unwrap().push(step);
    }

    fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/internal/v1/saga/{id}",
                get(|State(stub): State<Arc<Self>>| async move {
                    Json(Value::Array(stub.steps.lock().unwrap().clone()))
                }),
            )
            .with_state(self.clone())
    }
}

/// Who calls the service's internal routes, from its document: tests call them as those do.
static CALLERS: kommerce_kit::testing::InternalCallers =
    kommerce_kit::testing::InternalCallers::new("order", kommerce_order::openapi);

pub struct TestApp {
    pub base: String,
    pub http: Client,
    pub db: TestDatabase,
    pub kafka: KafkaSettings,
    pub item: Arc<ItemStub>,
    pub pay: Arc<PayStub>,
    signer: TokenSigner,
    publisher: OnceCell<Publisher>,
    _redis: RedisNamespace,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with `tweak` applied to the settings last.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        kommerce_kit::telemetry::init(
            "order",
            &kommerce_kit::TelemetrySettings {
                log_filter: "warn".into(),
                json: false,
            },
        );
        let item = Arc::new(ItemStub::default());
        let pay = Arc::new(PayStub::default());
        let peers = PeersSettings {
            item: serve_stub(item.router()).await,
            pay: serve_stub(pay.router()).await,
            timeout_ms: 10_000,
            ..PeersSettings::default()
        };
        let db = TestDatabase::create(MIGRATIONS).await;
        let redis = RedisNamespace::new();
        let auth = auth_settings();
        let kafka = kafka_settings();
        let mut settings = Settings {
            http: kommerce_kit::testing::local_http(),
            database: db.settings(),
            redis: redis.settings(),
            auth: auth.clone(),
            kafka: kafka.clone(),
            peers,
            ..Settings::default()
        };
        settings.saga.consumers = 1;
        tweak(&mut settings);
        let app = App::build(settings).await.expect("order service builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        Self {
            base,
            http: Client::new(),
            db,
            kafka,
            item,
            pay,
            signer: TokenSigner::new(&auth).unwrap(),
            publisher: OnceCell::new(),
            _redis: redis,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    fn signed(&self, role: Role) -> User {
        let id = Uuid::new_v4();
        let token = self.signer.sign(id, role, Uuid::new_v4()).unwrap().0;
        User { id, token }
    }

    pub fn customer(&self) -> User {
        self.signed(Role::Customer)
    }

    pub fn admin(&self) -> User {
        self.signed(Role::Admin)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&User>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        r = CALLERS.attach(r, &method, path);
        if let Some(u) = user {
            r = r.bearer_auth(&u.token);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, user: Option<&User>) -> reqwest::Response {
        self.send(Method::GET, path, user, None).await
    }

    /// `GET` answered 200: its body.
    pub async fn get_ok(&self, path: &str, user: &User) -> Value {
        let r = self.get(path, Some(user)).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, user: &User, body: &Value) -> reqwest::Response {
        self.send(Method::POST, path, Some(user), Some(body)).await
    }

    /// Adds `qty` of `item` to the user's cart; asserts 201 or 200 and returns the line.
    pub async fn add_to_cart(&self, user: &User, item: Uuid, qty: i64) -> Value {
        let r = self
            .post(
                "/api/v1/cart/items",
                user,
                &json!({"item_id": item, "qty": qty}),
            )
            .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status}: {body}"
        );
        body
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        kommerce_kit::testing::scalar(self.pool(), sql).await
    }

    /// The user's cart as stored: `(item_id, qty)` in the order the lines were added.
    pub async fn stored_cart(&self, user: &User) -> Vec<(Uuid, i32)> {
        sqlx::query_as(
            "SELECT item_id, qty FROM cart_lines WHERE user_id = $1 ORDER BY added_at, id",
        )
        .bind(user.id)
        .fetch_all(self.pool())
        .await
        .unwrap()
    }

    /// Writes an order straight into the database, as a finished saga leaves it: `lines` are
    /// `(item_id, unit_price_minor, qty)`. Returns `(order_id, payment_id)`.
    pub async fn order(
        &self,
        user: &User,
        status: &str,
        lines: &[(Uuid, i64, i32)],
    ) -> (Uuid, Uuid) {
        let (order, payment) = (Uuid::now_v7(), Uuid::now_v7());
        let total: i64 = lines.iter().map(|(_, p, q)| p * i64::from(*q)).sum();
        sqlx::query(
            "INSERT INTO orders (id, user_id, payment_id, status, total_minor, address) \
             VALUES ($1, $2, $3, $4, $5, '{\"city\": \"London\"}'::jsonb)",
        )
        .bind(order)
        .bind(user.id)
        .bind(payment)
        .bind(status)
        .bind(total)
        .execute(self.pool())
        .await
        .unwrap();
        for (item, price, qty) in lines {
            sqlx::query(
                "INSERT INTO order_lines (order_id, item_id, name, unit_price_minor, qty) \
                 VALUES ($1, $2, 'Thing', $3, $4)",
            )
            .bind(order)
            .bind(item)
            .bind(price)
            .bind(qty)
            .execute(self.pool())
            .await
            .unwrap();
        }
        (order, payment)
    }

    pub async fn order_status(&self, order: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }

    /// The envelopes of `event_type` in the service's outbox (its emitted events), oldest first.
    pub async fn emitted(&self, event_type: &str) -> Vec<Envelope> {
        kommerce_kit::testing::emitted(self.pool(), &self.kafka.topic(ORDERS_TOPIC), event_type)
            .await
    }

    /// How many events this service's consumer has applied (its inbox).
    pub async fn consumed(&self) -> i64 {
        self.scalar("SELECT count(*) FROM inbox").await
    }

    /// Publishes `event` into the payments topic, as pay would; returns its envelope.
    pub async fn publish<E: Event>(&self, event: &E) -> Envelope {
        let publisher = self
            .publisher
            .get_or_init(|| Publisher::new(&self.kafka))
            .await;
        publisher
            .event(&self.kafka.topic(PAYMENTS_TOPIC), event)
            .await
    }
}

/// A `payment.completed` for `user` buying `lines` (`(item_id, unit_price_minor, qty)`).
pub fn payment_completed(user: &User, lines: &[(Uuid, i64, i32)]) -> PaymentCompleted {
    let lines: Vec<PaidLine> = lines
        .iter()
        .map(|&(item_id, unit_price_minor, qty)| PaidLine {
            item_id,
            name: format!("Item {item_id}"),
            unit_price_minor: Money::minor(unit_price_minor),
            qty: Quantity::new(qty),
        })
        .collect();
    PaymentCompleted {
        payment_id: Uuid::now_v7(),
        user_id: user.id,
        amount_minor: Money::total(lines.iter().map(|l| (l.unit_price_minor, l.qty)))
            .expect("a total in range"),
        method: "wallet".into(),
        lines,
        address: json!({"id": Uuid::new_v4(), "city": "London", "postal_code": "SW1Y 4JH"}),
    }
}
