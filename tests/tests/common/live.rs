//! A platform of the services as separate OS processes, started by the supervisor behind
//! `kommerce up` with its own databases, Kafka namespace and Redis prefix: what the platform,
//! contract and fault tests drive. Needs the service binaries next to the test's directory
//! (`make test` builds them first).

// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

use crate::common::{Request, Shopper, insert_shoppers, scalar};
use kommerce::supervisor::{Platform, UpOptions};
use kommerce::topology::SERVICES;
use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::testing::auth_settings;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// Checkouts in the load: `KOMMERCE_LOAD_BUYERS` (default 1,000) on a tenth as many units.
pub(crate) fn buyers() -> usize {
    std::env::var("KOMMERCE_LOAD_BUYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

pub(crate) const BALANCE: i64 = 1_000;
pub(crate) const PRICE: i64 = 1_000;

/// The platform of one test: its own databases, Kafka namespace and Redis prefix.
pub(crate) struct Live {
    pub(crate) platform: Option<Platform>,
    pub(crate) opts: UpOptions,
    pub(crate) http: Client,
    pub(crate) base: String,
    pub(crate) signer: TokenSigner,
    pub(crate) admin: String,
    pub(crate) user_db: PgPool,
    pub(crate) order_db: PgPool,
    pub(crate) pay_db: PgPool,
    pub(crate) item_db: PgPool,
    pub(crate) retries: AtomicUsize,
}

pub(crate) fn server_url() -> String {
    std::env::var("KOMMERCE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl Live {
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// With extra `KOMMERCE_*` variables for every service.
    pub(crate) async fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_on(env, server_url()).await
    }

    /// The services reach PostgreSQL at `database_url` (a fault proxy, say); the test itself
    /// and `kommerce audit` reach it directly.
    pub(crate) async fn start_on(env: &[(&str, &str)], database_url: String) -> Self {
        Self::start_full(env, database_url, None).await
    }

    /// With an admin account (e-mail, password) bootstrapped, as `kommerce up` does: for
    /// clients that log in, like a browser.
    pub(crate) async fn start_with_admin(email: &str, password: &str) -> Self {
        let admin = Some((email.to_owned(), password.to_owned()));
        Self::start_full(&[], server_url(), admin).await
    }

    async fn start_full(
        env: &[(&str, &str)],
        database_url: String,
        admin: Option<(String, String)>,
    ) -> Self {
        let bin_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(|deps| deps.parent())
            .map(PathBuf::from)
            .unwrap();
        for s in SERVICES {
            assert!(
                bin_dir.join(s.binary).exists(),
                "{} missing in {}: build the services first (`cargo build --bins`; make test does)",
                s.binary,
                bin_dir.display()
            );
        }
        let ns = format!("p{}", &Uuid::new_v4().simple().to_string()[..12]);
        let state_dir = std::env::temp_dir().join(format!("kommerce-{ns}"));
        std::fs::create_dir_all(&state_dir).unwrap();
        // The key the platform signs with (the user service's key file): known to the test, so
        // it can mint tokens.
        let auth = auth_settings();
        std::fs::write(
            state_dir.join("signing-keys"),
            format!("{}\n", auth.signing_key.expose()),
        )
        .unwrap();
        let signer = TokenSigner::new(&auth).unwrap();
        let opts = UpOptions {
            host: "127.0.0.1".into(),
            port: 0,
            database_url,
            redis_url: "redis://127.0.0.1:6379".into(),
            state_dir,
            bin_dir,
            admin,
            namespace: Some(ns),
            kafka: std::env::var("KOMMERCE_TEST_KAFKA").ok(),
            // Six services per platform beside other tests on one PostgreSQL.
            env: [("KOMMERCE_DATABASE__MAX_CONNECTIONS", "8")]
                .iter()
                .chain(env)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let platform = Platform::start(&opts).await.unwrap();
        let db = |name: &str| {
            let spec = SERVICES.iter().find(|s| s.name == name).unwrap();
            let url =
                kommerce_kit::db::with_database_name(&server_url(), &opts.database_name(spec));
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(3)
                .connect_lazy(&url)
                .unwrap()
        };
        let admin = signer
            .sign(Uuid::new_v4(), Role::Admin, Uuid::new_v4())
            .unwrap()
            .0;
        Self {
            base: format!("http://{}", platform.router()),
            platform: Some(platform),
            http: Client::new(),
            signer,
            admin,
            user_db: db("user"),
            order_db: db("order"),
            pay_db: db("pay"),
            item_db: db("item"),
            opts,
            retries: AtomicUsize::new(0),
        }
    }

    pub(crate) fn platform(&mut self) -> &mut Platform {
        self.platform.as_mut().unwrap()
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let request = Request {
            method,
            path,
            token: Some(token),
            body,
            key,
        };
        let r = crate::common::send(&self.http, &self.base, &request, &self.retries).await;
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// An item on sale with `stock` units, made by an admin through the API.
    pub(crate) async fn item(&self, stock: i64) -> Uuid {
        let (s, cat) = self
            .call(
                Method::POST,
                "/api/v1/categories",
                &self.admin,
                Some(
                    &json!({"name": format!("Load {}", &Uuid::new_v4().simple().to_string()[..8])}),
                ),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{cat}");
        let (s, item) = self
            .call(
                Method::POST,
                "/api/v1/items",
                &self.admin,
                Some(
                    &json!({"name": "Hot item", "description": "Everyone wants one",
                             "price_minor": PRICE, "category_id": cat["id"], "stock": stock}),
                ),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{item}");
        item["id"].as_str().unwrap().parse().unwrap()
    }

    /// `n` shoppers with `BALANCE` in their wallets and one unit of `item` in their carts.
    pub(crate) async fn shoppers(&self, n: usize, item: Uuid) -> Vec<(Shopper, Uuid)> {
        let people = insert_shoppers(&self.user_db, &self.signer, n).await;
        futures::future::join_all(people.into_iter().map(|p| async move {
            let (s, w) = self
                .call(
                    Method::POST,
                    "/api/v1/wallet/top-up",
                    &p.token,
                    Some(&json!({"amount_minor": BALANCE})),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{w}");
            let (s, line) = self
                .call(
                    Method::POST,
                    "/api/v1/cart/items",
                    &p.token,
                    Some(&json!({"item_id": item, "qty": 1})),
                    None,
                )
                .await;
            assert!(s.is_success(), "{s} {line}");
            let line = line["id"].as_str().unwrap().parse().unwrap();
            (p, line)
        }))
        .await
    }

    pub(crate) async fn checkout(&self, p: &Shopper, line: Uuid) -> (StatusCode, Value) {
        let body = json!({"cart_line_ids": [line], "address_id": p.address_id,
                          "amount_minor": PRICE, "method": "wallet"});
        self.call(
            Method::POST,
            "/api/v1/payments",
            &p.token,
            Some(&body),
            Some(&format!("load-{}", p.id)),
        )
        .await
    }

    pub(crate) async fn pending(&self) -> i64 {
        scalar(
            &self.pay_db,
            "SELECT count(*) FROM payments WHERE status = 'pending_order'",
        )
        .await
    }

    /// `kommerce audit --json` over this platform, run as an SRE runs it: exit code and report.
    pub(crate) async fn audit(&self) -> (Option<i32>, String) {
        let out = tokio::process::Command::new(self.opts.bin_dir.join("kommerce"))
            .args(["audit", "--json", "--database-url", &server_url()])
            .args(["--namespace", self.opts.namespace.as_deref().unwrap()])
            .args([
                "--kafka",
                self.opts.kafka.as_deref().unwrap_or("127.0.0.1:9092"),
            ])
            .output()
            .await
            .unwrap();
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Every service answers `/readyz` 200 with its workers running; returns each report.
    pub(crate) async fn all_ready(&self) -> Vec<Value> {
        let mut reports = Vec::new();
        for (name, port) in self.platform.as_ref().unwrap().ports() {
            let r = self
                .http
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
            reports.push(json!({ "service": name, "readiness": body }));
        }
        reports
    }

    pub(crate) async fn metrics(&self, service: &str) -> String {
        let port = self
            .platform
            .as_ref()
            .unwrap()
            .ports()
            .into_iter()
            .find(|(n, _)| *n == service)
            .unwrap()
            .1;
        self.http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Every `payment.completed` applied exactly once by order: one inbox row per payment.
    pub(crate) async fn assert_each_payment_applied_once(&self, buyers: i64) {
        assert_eq!(
            scalar(
                &self.order_db,
                "SELECT count(*) FROM inbox WHERE event_type = 'payment.completed'"
            )
            .await,
            buyers
        );
        assert_eq!(
            scalar(
                &self.order_db,
                "SELECT count(DISTINCT event_id) FROM inbox WHERE event_type = 'payment.completed'"
            )
            .await,
            buyers
        );
    }

    pub(crate) async fn stop(mut self) {
        if let Some(p) = self.platform.take() {
            p.stop().await;
        }
        self.user_db.close().await;
        self.order_db.close().await;
        self.pay_db.close().await;
        let _ = std::fs::remove_dir_all(&self.opts.state_dir);
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server_url())
            .await
            .unwrap();
        for s in SERVICES {
            let name = self.opts.database_name(s);
            let _ = sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                .execute(&mut admin)
                .await;
        }
    }
}

impl Live {
    /// The status of `GET path` with `token` for each of `paths`, through the router.
    pub(crate) async fn statuses(&self, token: &str, paths: &[&str]) -> Vec<StatusCode> {
        let mut out = Vec::new();
        for path in paths {
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            out.push(r.status());
        }
        out
    }

    /// A fresh access token for `email`, from a login through the router.
    pub(crate) async fn login(&self, email: &str, password: &str) -> String {
        let r: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_owned()
    }

    /// A customer account made through the API.
    pub(crate) async fn sign_up(&self, email: &str, password: &str) {
        let r = self
            .http
            .post(format!("{}/api/v1/users", self.base))
            .json(&json!({"email": email, "password": password,
                          "name": "Tester", "phone": "+15550100"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    /// Sets the stock pool's policy to `strategy`, as the operator does (the document, then the
    /// announcement), and waits until the item service acknowledges it.
    pub(crate) async fn stock_strategy(&self, strategy: kommerce_item::domain::stock::Strategy) {
        kommerce::bench::apply_stock_policy(
            &self.opts.redis_url,
            self.opts.namespace.as_deref().unwrap(),
            strategy,
        )
        .await
        .unwrap();
    }

    /// Units of `item` still to be had: its stock and the ledger rows not folded in yet.
    pub(crate) async fn available(&self, item: Uuid) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT {} FROM items WHERE id = $1",
            kommerce_item::stock::AVAILABLE
        ))
        .bind(item)
        .fetch_one(&self.item_db)
        .await
        .unwrap()
    }

    /// Deletes every Redis key of this platform (its key prefix): what a Redis restart without
    /// persistence does to it, leaving other tests' keys alone. Returns how many there were.
    pub(crate) fn lose_every_redis_key(&self) -> usize {
        let prefix = format!("{}:", self.opts.namespace.as_deref().unwrap());
        let client = redis::Client::open(self.opts.redis_url.as_str()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut conn)
            .unwrap();
        if !keys.is_empty() {
            let _: u64 = redis::cmd("DEL").arg(&keys).query(&mut conn).unwrap();
        }
        keys.len()
    }
}
