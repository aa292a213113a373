//! The pay service spawned on port 0 with its own PostgreSQL database, Redis namespace and
//! Kafka namespace; its peers — order (carts), item (current prices) and user (addresses) —
//! are stubs on ports of their own that serve what a test puts in them. Events from order are
//! published into the orders topic through an outbox of their own, as order would.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use kommerce_contracts::item::{ItemView, ItemViews};
use kommerce_contracts::money::Money;
use kommerce_contracts::order::{CartLineView, CartView};
use kommerce_contracts::saga::{ORDERS_TOPIC, PAYMENTS_TOPIC};
use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::http::ApiError;
use kommerce_kit::messaging::{Envelope, Event};
use kommerce_kit::testing::{
    Publisher, RedisNamespace, TestDatabase, auth_settings, kafka_settings, serve_stub,
};
use kommerce_kit::{KafkaSettings, PeersSettings};
use kommerce_pay::{App, MIGRATIONS, Settings};
use reqwest::Client;
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

/// A customer with a token and an address of their own.
pub struct Shopper {
    pub id: Uuid,
    pub token: String,
    pub address_id: Uuid,
}

/// What pay's peers know: the order service's carts, the item service's catalogue and the user
/// service's addresses (their sides of `kommerce_contracts`).
#[derive(Default)]
pub struct Peers {
    carts: Mutex<HashMap<Uuid, Vec<CartLineView>>>,
    items: Mutex<HashMap<Uuid, ItemView>>,
    addresses: Mutex<HashMap<(Uuid, Uuid), Value>>,
}

impl Peers {
    /// An item on sale at `price`.
    pub fn item(&self, name: &str, price: i64) -> Uuid {
        let id = Uuid::now_v7();
        self.items.lock().unwrap().insert(
            id,
            ItemView {
                id,
                name: name.to_owned(),
                price_minor: Money::minor(price),
                status: "on_sale".into(),
                stock: 100,
                deleted: false,
            },
        );
        id
    }

    pub fn set_price(&self, item: Uuid, price: i64) {
        self.items
            .lock()
            .unwrap()
            .get_mut(&item)
            .unwrap()
            .price_minor = Money::minor(price);
    }

    pub fn set_status(&self, item: Uuid, status: &str) {
        status.clone_into(&mut self.items.lock().unwrap().get_mut(&item).unwrap().status);
    }

    /// Puts `qty` of `item` in the shopper's cart; returns the line id.
    pub fn cart_line(&self, shopper: &Shopper, item: Uuid, qty: i32) -> Uuid {
        let id = Uuid::now_v7();
        self.carts
            .lock()
            .unwrap()
            .entry(shopper.id)
            .or_default()
            .push(CartLineView {
                id,
                item_id: item,
                qty,
            });
        id
    }

    /// The address as the user service serves it.
    pub fn address(&self, user: Uuid, id: Uuid) -> Value {
        self.addresses.lock().unwrap()[&(user, id)].clone()
    }

    fn add_address(&self, user: Uuid) -> Uuid {
        let id = Uuid::now_v7();
        self.addresses.lock().unwrap().insert(
            (user, id),
            json!({
                "id": id, "user_id": user, "label": null, "recipient": "Ada Lovelace",
                "phone": "+442079460000", "line1": "12 St James's Square", "line2": null,
                "city": "London", "region": null, "postal_code": "SW1Y 4JH", "country": "GB",
                "is_default": true,
            }),
        );
        id
    }

    fn order(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/internal/v1/carts/{user_id}",
                get(
                    |State(peers): State<Arc<Self>>, Path(user_id): Path<Uuid>| async move {
                        let lines = peers
                            .carts
                            .lock()
                            .unwrap()
                            .get(&user_id)
                            .cloned()
                            .unwrap_or_default();
                        Json(CartView { user_id, lines })
                    },
                ),
            )
            .with_state(self.clone())
    }

    fn item_service(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/internal/v1/items",
                get(
                    |State(peers): State<Arc<Self>>,
                     Query(q): Query<HashMap<String, String>>| async move {
                        let known = peers.items.lock().unwrap();
                        let items = q
                            .get("ids")
                            .map(String::as_str)
                            .unwrap_or_default()
                            .split(',')
                            .filter_map(|id| id.parse::<Uuid>().ok())
                            .filter_map(|id| known.get(&id).cloned())
                            .collect();
                        Json(ItemViews { items })
                    },
                ),
            )
            .with_state(self.clone())
    }

    fn user(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/internal/v1/users/{id}/addresses/{address_id}",
                get(
                    |State(peers): State<Arc<Self>>,
                     Path((user, id)): Path<(Uuid, Uuid)>| async move {
                        let found = peers.addresses.lock().unwrap().get(&(user, id)).cloned();
                        match found {
                            Some(address) => Json(address).into_response(),
                            None => ApiError::NotFound("address").into_response(),
                        }
                    },
                ),
            )
            .with_state(self.clone())
    }
}

/// Who calls the service's internal routes, from its document: tests call them as those do.
static CALLERS: kommerce_kit::testing::InternalCallers =
    kommerce_kit::testing::InternalCallers::new("pay", kommerce_pay::openapi);

pub struct TestApp {
    pub base: String,
    pub http: Client,
    pub db: TestDatabase,
    pub kafka: KafkaSettings,
    pub peers: Arc<Peers>,
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
            "pay",
            &kommerce_kit::TelemetrySettings {
                log_filter: "warn".into(),
                json: false,
            },
        );
        let peers = Arc::new(Peers::default());
        let peer_settings = PeersSettings {
            order: serve_stub(peers.order()).await,
            item: serve_stub(peers.item_service()).await,
            user: serve_stub(peers.user()).await,
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
            peers: peer_settings,
            ..Settings::default()
        };
        settings.saga.consumers = 1;
        tweak(&mut settings);
        let app = App::build(settings).await.expect("pay service builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        Self {
            base,
            http: Client::new(),
            db,
            kafka,
            peers,
            signer: TokenSigner::new(&auth).unwrap(),
            publisher: OnceCell::new(),
            _redis: redis,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A customer with an address and `balance` in the wallet (topped up through the API).
    pub async fn shopper(&self, balance: i64) -> Shopper {
        let id = Uuid::new_v4();
        let token = self
            .signer
            .sign(id, Role::Customer, Uuid::new_v4())
            .unwrap()
            .0;
        let shopper = Shopper {
            id,
            token,
            address_id: self.peers.add_address(id),
        };
        if balance > 0 {
            let r = self.top_up(&shopper, balance, None).await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        shopper
    }

    pub async fn top_up(&self, s: &Shopper, amount: i64, key: Option<&str>) -> reqwest::Response {
        self.top_up_with(s, &json!({ "amount_minor": amount }), key)
            .await
    }

    pub async fn top_up_with(
        &self,
        s: &Shopper,
        body: &Value,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut r = self
            .http
            .post(self.url("/api/v1/wallet/top-up"))
            .bearer_auth(&s.token)
            .json(body);
        if let Some(key) = key {
            r = r.header("Idempotency-Key", key);
        }
        r.send().await.expect("request")
    }

    /// `POST /api/v1/payments` with `body` and, when given, an `Idempotency-Key`.
    pub async fn pay_with(
        &self,
        s: &Shopper,
        body: &Value,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut r = self
            .http
            .post(self.url("/api/v1/payments"))
            .bearer_auth(&s.token)
            .json(body);
        if let Some(key) = key {
            r = r.header("Idempotency-Key", key);
        }
        r.send().await.expect("request")
    }

    /// Pays for `lines` from the shopper's own address.
    pub async fn pay(
        &self,
        s: &Shopper,
        lines: &[Uuid],
        amount: i64,
        method: &str,
        key: &str,
    ) -> reqwest::Response {
        self.pay_with(
            s,
            &json!({"cart_line_ids": lines, "address_id": s.address_id, "amount_minor": amount, "method": method}),
            Some(key),
        )
        .await
    }

    /// Pays and asserts 201; returns the payment's id.
    pub async fn paid(&self, s: &Shopper, lines: &[Uuid], amount: i64, method: &str) -> Uuid {
        let r = self
            .pay(s, lines, amount, method, &Uuid::new_v4().to_string())
            .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn get(&self, path: &str, s: Option<&Shopper>) -> reqwest::Response {
        let mut r = self.http.get(self.url(path));
        r = CALLERS.attach(r, &reqwest::Method::GET, path);
        if let Some(s) = s {
            r = r.bearer_auth(&s.token);
        }
        r.send().await.expect("request")
    }

    /// `GET` answered 200: its body.
    pub async fn get_ok(&self, path: &str, s: &Shopper) -> Value {
        let r = self.get(path, Some(s)).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// The wallet as the shopper sees it: `(balance, [(delta, kind, payment_id)])`, newest first.
    pub async fn wallet(&self, s: &Shopper) -> (i64, Vec<(i64, String, Option<Uuid>)>) {
        let w = self.get_ok("/api/v1/wallet", s).await;
        let entries = w["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["delta_minor"].as_i64().unwrap(),
                    e["kind"].as_str().unwrap().to_owned(),
                    e["payment_id"].as_str().map(|p| p.parse().unwrap()),
                )
            })
            .collect();
        (w["balance_minor"].as_i64().unwrap(), entries)
    }

    pub async fn balance(&self, s: &Shopper) -> i64 {
        self.wallet(s).await.0
    }

    pub async fn payment(&self, s: &Shopper, id: Uuid) -> Value {
        self.get_ok(&format!("/api/v1/payments/{id}"), s).await
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        kommerce_kit::testing::scalar(self.pool(), sql).await
    }

    /// The envelopes of `event_type` in the service's outbox (its emitted events), oldest first.
    pub async fn emitted(&self, event_type: &str) -> Vec<Envelope> {
        kommerce_kit::testing::emitted(self.pool(), &self.kafka.topic(PAYMENTS_TOPIC), event_type)
            .await
    }

    /// How many events this service's consumer has applied (its inbox).
    pub async fn consumed(&self) -> i64 {
        self.scalar("SELECT count(*) FROM inbox").await
    }

    /// Publishes `event` into the orders topic, as order would; returns its envelope.
    pub async fn publish<E: Event>(&self, event: &E) -> Envelope {
        let publisher = self
            .publisher
            .get_or_init(|| Publisher::new(&self.kafka))
            .await;
        publisher
            .event(&self.kafka.topic(ORDERS_TOPIC), event)
            .await
    }

    /// Waits until the payment's status is `status`; returns the payment.
    pub async fn settled(&self, s: &Shopper, id: Uuid, status: &str) -> Value {
        eventually(&format!("payment {id} is {status}"), || async {
            self.payment(s, id).await["status"] == status
        })
        .await;
        self.payment(s, id).await
    }
}
