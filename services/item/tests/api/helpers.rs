//! The item service spawned on port 0 against real PostgreSQL and Redis, with tokens minted by
//! a test key pair and helpers to drive the live stock-pool policy through its Redis contract.

#![allow(dead_code)] // not every module uses every helper

use std::future::Future;
use std::time::Duration;

use kommerce_contracts::stock_pool::{PoolPolicy, Strategy};
use kommerce_item::{App, Settings};
use kommerce_kit::HttpSettings;
use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::testing::{
    RedisNamespace, TestDatabase, auth_settings, kafka_settings, redis_url,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

pub const INSTANCE: &str = "item-test-1";

/// Who calls the service's internal routes, from its document: tests call them as those do.
static CALLERS: kommerce_kit::testing::InternalCallers =
    kommerce_kit::testing::InternalCallers::new("item", kommerce_item::openapi);

pub struct TestApp {
    pub base: String,
    pub http: Client,
    pub db: TestDatabase,
    pub redis: RedisNamespace,
    pub admin: String,
    pub customer: String,
}

/// The kit's `eventually` with this suite's 30 s limit.
pub async fn eventually<F: Future<Output = bool>>(what: &str, check: impl FnMut() -> F) {
    kommerce_kit::testing::eventually(what, Duration::from_secs(30), check).await;
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with `tweak` applied to the settings last.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        // Warnings and errors show in a failing test's output.
        kommerce_kit::telemetry::init(
            "item",
            &kommerce_kit::TelemetrySettings {
                log_filter: "warn".into(),
                json: false,
            },
        );
        let db = TestDatabase::create(kommerce_item::MIGRATIONS).await;
        let redis = RedisNamespace::new();
        let auth = auth_settings();
        let mut settings = Settings {
            // Contention runs queue far more requests than a real client would wait for.
            http: HttpSettings {
                host: "127.0.0.1".into(),
                port: 0,
                request_timeout_ms: 120_000,
                ..HttpSettings::default()
            },
            database: db.settings(),
            redis: redis.settings(),
            auth: auth.clone(),
            kafka: kafka_settings(),
            ..Settings::default()
        };
        settings.database.max_connections = 10;
        settings.database.acquire_timeout_ms = 30_000;
        settings.stock.instance_id = Some(INSTANCE.into());
        settings.stock.ack_interval_ms = 200;
        settings.stock.fold_interval_ms = 50;
        tweak(&mut settings);
        let app = App::build(settings).await.expect("item service builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        let signer = TokenSigner::new(&auth).unwrap();
        let admin = signer
            .sign(Uuid::new_v4(), Role::Admin, Uuid::new_v4())
            .unwrap()
            .0;
        let customer = signer
            .sign(Uuid::new_v4(), Role::Customer, Uuid::new_v4())
            .unwrap()
            .0;
        Self {
            base,
            http: Client::new(),
            db,
            redis,
            admin,
            customer,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut r = self.http.request(method.clone(), self.url(path));
        r = CALLERS.attach(r, &method, path);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Response {
        self.send(reqwest::Method::POST, path, Some(&self.admin), Some(body))
            .await
    }

    pub async fn category(&self, name: &str, parent: Option<&str>) -> String {
        let r = self
            .admin_post(
                "/api/v1/categories",
                &json!({"name": name, "parent_id": parent}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn item(&self, category: &str, name: &str, price: i64, stock: i64) -> String {
        self.item_with(json!({"name": name, "description": format!("{name} for testing"), "price_minor": price, "category_id": category, "stock": stock})).await
    }

    pub async fn item_with(&self, body: Value) -> String {
        let r = self.admin_post("/api/v1/items", &body).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn reserve(&self, id: Uuid, lines: &[(&str, i64)]) -> (StatusCode, Value) {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(item, qty)| json!({"item_id": item, "qty": qty}))
            .collect();
        let r = self
            .send(
                reqwest::Method::POST,
                "/internal/v1/stock/reservations",
                None,
                Some(&json!({"reservation_id": id, "lines": lines})),
            )
            .await;
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn reserve_one(&self, id: Uuid, item: &str, qty: i64) -> (StatusCode, Value) {
        self.reserve(id, &[(item, qty)]).await
    }

    pub async fn release(&self, id: Uuid) -> StatusCode {
        self.send(
            reqwest::Method::DELETE,
            &format!("/internal/v1/stock/reservations/{id}"),
            None,
            None,
        )
        .await
        .status()
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        kommerce_kit::testing::scalar(self.pool(), sql).await
    }

    /// Available stock straight from the database (items.stock + unapplied ledger rows).
    pub async fn available(&self, item: &str) -> i64 {
        sqlx::query_scalar("SELECT (stock + COALESCE((SELECT sum(delta) FROM stock_ledger WHERE item_id = items.id AND NOT applied), 0))::bigint FROM items WHERE id = $1")
            .bind(item.parse::<Uuid>().unwrap())
            .fetch_one(self.pool())
            .await
            .unwrap()
    }

    /// Every ledger explains its item's stock, nothing is negative, and the folder has caught up.
    pub async fn assert_ledger_explains_stock(&self) {
        eventually("the folder applied every ledger row", || async {
            self.scalar("SELECT count(*) FROM stock_ledger WHERE NOT applied")
                .await
                == 0
        })
        .await;
        let mismatched = self
            .scalar("SELECT count(*) FROM items i WHERE i.stock <> COALESCE((SELECT sum(delta) FROM stock_ledger l WHERE l.item_id = i.id), 0)")
            .await;
        assert_eq!(mismatched, 0, "the ledger explains every item's stock");
        assert_eq!(
            self.scalar("SELECT count(*) FROM items WHERE stock < 0")
                .await,
            0
        );
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.redis.prefix)
    }

    /// Writes a stock-pool document and announces it, as the operator does; waits until this
    /// instance acknowledges its hash.
    pub async fn apply_policy(&self, policy: &PoolPolicy) -> String {
        let doc = policy.document();
        let hash = serde_json::from_str::<Value>(&doc).unwrap()["hash"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut conn = redis_conn();
        let () = redis::cmd("SET")
            .arg(self.key("stockpool:default"))
            .arg(&doc)
            .query(&mut conn)
            .unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(self.key("stockpool:default:changed"))
            .arg(&hash)
            .query(&mut conn)
            .unwrap();
        self.wait_for_ack(&hash).await;
        hash
    }

    pub async fn strategy(&self, strategy: Strategy) -> String {
        self.apply_policy(&PoolPolicy {
            strategy,
            max_wait_ms: 60_000,
            ..PoolPolicy::default()
        })
        .await
    }

    pub fn ack(&self) -> Option<String> {
        redis::cmd("GET")
            .arg(self.key(&format!("stockpool:default:ack:{INSTANCE}")))
            .query(&mut redis_conn())
            .unwrap()
    }

    pub async fn wait_for_ack(&self, hash: &str) {
        eventually(&format!("ack of {hash}"), || async {
            self.ack().as_deref() == Some(hash)
        })
        .await;
    }

    /// Drops every Redis key of this app (what a Redis restart without persistence does).
    pub fn flush_redis(&self) {
        let mut conn = redis_conn();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}item:*", self.redis.prefix))
            .query(&mut conn)
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut conn).unwrap();
        }
    }
}

impl TestApp {
    /// Sets one of this app's Redis keys (under its prefix).
    pub fn set_redis(&self, suffix: &str, value: i64) {
        let _: () = redis::cmd("SET")
            .arg(self.key(suffix))
            .arg(value)
            .query(&mut redis_conn())
            .unwrap();
    }

    pub fn get_redis(&self, suffix: &str) -> Option<i64> {
        redis::cmd("GET")
            .arg(self.key(suffix))
            .query(&mut redis_conn())
            .unwrap()
    }

    /// Deletes one of this app's Redis keys; 1 if it existed.
    pub fn delete_redis(&self, suffix: &str) -> i64 {
        redis::cmd("DEL")
            .arg(self.key(suffix))
            .query(&mut redis_conn())
            .unwrap()
    }
}

pub use kommerce_kit::testing::{fields, problem};

fn redis_conn() -> redis::Connection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_connection()
        .unwrap()
}
