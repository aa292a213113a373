//! The review service spawned with the real services around it — order (purchase check), image
//! (attachments) and item (the rating consumer) — each on port 0 with its own PostgreSQL
//! database, sharing one Redis namespace, one key pair and a Kafka namespace of this test's own.

#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::io::Cursor;
use std::path::PathBuf;
use std::time::Duration;

use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings, kafka_settings};
use kommerce_kit::{AuthSettings, KafkaSettings, PeersSettings};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

pub struct User {
    pub id: Uuid,
    pub token: String,
}

pub struct Stack {
    pub http: Client,
    pub review: String,
    pub item: String,
    pub image: String,
    pub review_db: TestDatabase,
    pub item_db: TestDatabase,
    pub order_db: TestDatabase,
    pub image_db: TestDatabase,
    pub redis: RedisNamespace,
    pub kafka: KafkaSettings,
    pub signer: TokenSigner,
    pub admin: User,
    images_dir: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.images_dir);
    }
}

/// The kit's `eventually` with this suite's 30 s limit.
pub async fn eventually<F: Future<Output = bool>>(what: &str, check: impl FnMut() -> F) {
    kommerce_kit::testing::eventually(what, Duration::from_secs(30), check).await;
}

/// Four services per test: keep each one's pool small, so parallel tests stay well below
/// PostgreSQL's connection limit.
fn small_pool(db: &TestDatabase) -> kommerce_kit::DatabaseSettings {
    kommerce_kit::DatabaseSettings {
        max_connections: 3,
        acquire_timeout_ms: 10_000,
        ..db.settings()
    }
}

fn local(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

async fn order_app(
    auth: &AuthSettings,
    redis: &RedisNamespace,
    kafka: &KafkaSettings,
) -> (TestDatabase, String) {
    let db = TestDatabase::create(kommerce_order::MIGRATIONS).await;
    let settings = kommerce_order::Settings {
        http: kommerce_kit::testing::local_http(),
        database: small_pool(&db),
        redis: redis.settings(),
        auth: auth.clone(),
        kafka: kafka.clone(),
        ..kommerce_order::Settings::default()
    };
    let app = kommerce_order::App::build(settings)
        .await
        .expect("order service builds");
    let base = local(app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    (db, base)
}

async fn item_app(
    auth: &AuthSettings,
    redis: &RedisNamespace,
    kafka: &KafkaSettings,
) -> (TestDatabase, String) {
    let db = TestDatabase::create(kommerce_item::MIGRATIONS).await;
    let settings = kommerce_item::Settings {
        http: kommerce_kit::testing::local_http(),
        database: small_pool(&db),
        redis: redis.settings(),
        auth: auth.clone(),
        kafka: kafka.clone(),
        ..kommerce_item::Settings::default()
    };
    let app = kommerce_item::App::build(settings)
        .await
        .expect("item service builds");
    let base = local(app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    (db, base)
}

async fn image_app(
    auth: &AuthSettings,
    redis: &RedisNamespace,
    dir: &std::path::Path,
) -> (TestDatabase, String) {
    let db = TestDatabase::create(kommerce_image::MIGRATIONS).await;
    let mut settings = kommerce_image::Settings {
        http: kommerce_kit::testing::local_http(),
        database: small_pool(&db),
        redis: redis.settings(),
        auth: auth.clone(),
        ..kommerce_image::Settings::default()
    };
    settings.storage.path = dir.to_string_lossy().into_owned();
    let app = kommerce_image::App::build(settings)
        .await
        .expect("image service builds");
    let base = local(app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    (db, base)
}

impl Stack {
    pub async fn spawn() -> Self {
        Self::spawn_with_order(None).await
    }

    /// `order`: where the review service looks for the order service (default: a real one).
    pub async fn spawn_with_order(order: Option<String>) -> Self {
        kommerce_kit::telemetry::init(
            "review",
            &kommerce_kit::TelemetrySettings {
                log_filter: "warn".into(),
                json: false,
            },
        );
        let auth = auth_settings();
        let redis = RedisNamespace::new();
        let kafka = kafka_settings();
        let images_dir =
            std::env::temp_dir().join(format!("kommerce-review-images-{}", Uuid::new_v4()));
        let (order_db, order_base) = order_app(&auth, &redis, &kafka).await;
        let (item_db, item) = item_app(&auth, &redis, &kafka).await;
        let (image_db, image) = image_app(&auth, &redis, &images_dir).await;
        let review_db = TestDatabase::create(kommerce_review::MIGRATIONS).await;
        let settings = kommerce_review::Settings {
            http: kommerce_kit::testing::local_http(),
            database: small_pool(&review_db),
            redis: redis.settings(),
            auth: auth.clone(),
            kafka: kafka.clone(),
            peers: PeersSettings {
                order: order.unwrap_or(order_base),
                image: image.clone(),
                item: item.clone(),
                ..PeersSettings::default()
            },
            ..kommerce_review::Settings::default()
        };
        let app = kommerce_review::App::build(settings)
            .await
            .expect("review service builds");
        let review = local(app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        let signer = TokenSigner::new(&auth).unwrap();
        let admin_id = Uuid::new_v4();
        let admin = User {
            id: admin_id,
            token: signer
                .sign(admin_id, Role::Admin, Uuid::new_v4())
                .unwrap()
                .0,
        };
        Self {
            http: Client::new(),
            review,
            item,
            image,
            review_db,
            item_db,
            order_db,
            image_db,
            redis,
            kafka,
            signer,
            admin,
            images_dir,
        }
    }

    pub fn user(&self) -> User {
        let id = Uuid::new_v4();
        User {
            id,
            token: self
                .signer
                .sign(id, Role::Customer, Uuid::new_v4())
                .unwrap()
                .0,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut r = self.http.request(method, url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.expect("request")
    }

    pub async fn api(
        &self,
        method: Method,
        path: &str,
        user: Option<&User>,
        body: Option<&Value>,
    ) -> Response {
        self.send(
            method,
            &format!("{}{path}", self.review),
            user.map(|u| u.token.as_str()),
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.api(Method::GET, path, None, None).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// An item in the catalogue (through the item service's API, as an admin).
    pub async fn item(&self, name: &str) -> Uuid {
        let r = self
            .send(
                Method::POST,
                &format!("{}/api/v1/categories", self.item),
                Some(&self.admin.token),
                Some(&json!({"name": format!("{name} category")})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let category = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = self
            .send(
                Method::POST,
                &format!("{}/api/v1/items", self.item),
                Some(&self.admin.token),
                Some(&json!({"name": name, "description": "for reviews", "price_minor": 1000, "category_id": category, "stock": 10})),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Writes an order with a line for `item` straight into the order service's database, with
    /// `status` — the state a finished checkout saga leaves (the saga itself is the order
    /// service's test).
    pub async fn order(&self, user: &User, item: Uuid, status: &str) {
        let order = Uuid::now_v7();
        sqlx::query("INSERT INTO orders (id, user_id, payment_id, status, total_minor, address) VALUES ($1, $2, $3, $4, 1000, '{}'::jsonb)")
            .bind(order)
            .bind(user.id)
            .bind(Uuid::new_v4())
            .bind(status)
            .execute(&self.order_db.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO order_lines (order_id, item_id, name, unit_price_minor, qty) VALUES ($1, $2, 'Thing', 1000, 1)")
            .bind(order)
            .bind(item)
            .execute(&self.order_db.pool)
            .await
            .unwrap();
    }

    /// A customer who bought `item` (a delivered order).
    pub async fn buyer(&self, item: Uuid) -> User {
        let u = self.user();
        self.order(&u, item, "delivered").await;
        u
    }

    pub async fn review(&self, user: &User, item: Uuid, rating: i64) -> Value {
        let r = self
            .api(Method::POST, "/api/v1/reviews", Some(user), Some(&json!({"item_id": item, "rating": rating, "title": "My view", "body": "It is what it is."})))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.json().await.unwrap()
    }

    /// Uploads a small PNG to the image service as `user`; returns its id.
    pub async fn upload(&self, user: &User) -> Uuid {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]));
        let mut png = Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(png.into_inner()));
        let r = self
            .http
            .post(format!("{}/api/v1/images", self.image))
            .bearer_auth(&user.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub async fn scalar(pool: &PgPool, sql: &str) -> i64 {
        kommerce_kit::testing::scalar(pool, sql).await
    }

    pub async fn reviews(&self) -> i64 {
        Self::scalar(&self.review_db.pool, "SELECT count(*) FROM reviews").await
    }

    pub async fn outbox(&self) -> i64 {
        Self::scalar(&self.review_db.pool, "SELECT count(*) FROM outbox").await
    }

    /// The item's `(rating_avg, rating_count)` in the item service's database.
    pub async fn item_rating(&self, item: Uuid) -> (f64, i64) {
        let (avg, count): (f64, i32) =
            sqlx::query_as("SELECT rating_avg, rating_count FROM items WHERE id = $1")
                .bind(item)
                .fetch_one(&self.item_db.pool)
                .await
                .unwrap();
        (avg, i64::from(count))
    }

    pub async fn summary(&self, item: Uuid) -> Value {
        self.get(&format!("/api/v1/reviews/summary?item_id={item}"))
            .await
    }

    /// Waits until the item service shows the summary's average and count.
    pub async fn item_matches_summary(&self, item: Uuid) {
        let s = self.summary(item).await;
        let want = (s["average"].as_f64().unwrap(), s["count"].as_i64().unwrap());
        eventually(&format!("item rating {want:?}"), || async {
            self.item_rating(item).await == want
        })
        .await;
    }
}

pub use kommerce_kit::testing::{fields, problem};
