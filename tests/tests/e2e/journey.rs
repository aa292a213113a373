//! A new user's first minutes, through the local router exactly as `kommerce up` serves it:
//! signup → login → me → two addresses → switch default → logout → the old token is refused,
//! by every service; and an admin stocking the catalogue that a shopper then searches.

use std::collections::HashMap;

use kommerce::topology::SERVICES;
use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings};
use kommerce_user::{App, MIGRATIONS, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Platform {
    base: String,
    user_db: TestDatabase,
    _item_db: TestDatabase,
    _redis: RedisNamespace,
}

impl Platform {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST` through the router, with a bearer token when given.
    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut r = reqwest::Client::new().post(self.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("the router answers")
    }

    /// The access token of a login.
    async fn login(&self, email: &str, password: &str) -> String {
        let tokens: Value = self
            .post(
                "/api/v1/auth/login",
                None,
                &json!({"email": email, "password": password}),
            )
            .await
            .json()
            .await
            .expect("tokens");
        tokens["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }
}

const ADMIN: (&str, &str) = ("admin@kommerce.test", "admin-password-1");

async fn spawn_platform() -> Platform {
    let user_db = TestDatabase::create(MIGRATIONS).await;
    let item_db = TestDatabase::create(kommerce_item::MIGRATIONS).await;
    let redis = RedisNamespace::new();
    let auth = auth_settings();
    let http = kommerce_kit::testing::local_http();
    let mut user_settings = Settings {
        http: http.clone(),
        database: user_db.settings(),
        redis: redis.settings(),
        auth: auth.clone(),
        ..Settings::default()
    };
    user_settings.user.bootstrap_admin_email = Some(ADMIN.0.into());
    user_settings.user.bootstrap_admin_password = Some(kommerce_kit::Secret::new(ADMIN.1));
    let user = App::build(user_settings)
        .await
        .expect("user service builds");
    // The item service gets only the public key: it verifies, it cannot sign.
    let item = kommerce_item::App::build(kommerce_item::Settings {
        http,
        database: item_db.settings(),
        redis: redis.settings(),
        auth: kommerce_kit::AuthSettings {
            signing_key: kommerce_kit::Secret::default(),
            ..auth
        },
        kafka: kommerce_kit::testing::kafka_settings(),
        ..kommerce_item::Settings::default()
    })
    .await
    .expect("item service builds");
    let upstreams = HashMap::from([
        ("user", format!("127.0.0.1:{}", user.port())),
        ("item", format!("127.0.0.1:{}", item.port())),
    ]);
    tokio::spawn(user.run_until(std::future::pending()));
    tokio::spawn(item.run_until(std::future::pending()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = kommerce::router::router(SERVICES, upstreams);
    tokio::spawn(async move { axum_serve(listener, router).await });
    Platform {
        base,
        user_db,
        _item_db: item_db,
        _redis: redis,
    }
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) {
    axum::serve(listener, router).await.expect("router serves");
}

#[tokio::test]
async fn a_new_user_signs_up_manages_addresses_and_logs_out() {
    let platform = spawn_platform().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", platform.base);

    let r = http
        .post(url("/api/v1/users"))
        .json(&json!({"email": "grace@example.com", "password": "hopper-1906-navy", "name": "Grace Hopper", "phone": "+1 212 555 0100"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let tokens: Value = http
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": "grace@example.com", "password": "hopper-1906-navy"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    let me: Value = http
        .get(url("/api/v1/users/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Grace Hopper");

    let mut ids = Vec::new();
    for city in ["Arlington", "New York"] {
        let r = http
            .post(url("/api/v1/users/me/addresses"))
            .bearer_auth(&access)
            .json(&json!({"recipient": "Grace Hopper", "phone": "+12125550100", "line1": "1 Navy Way", "city": city, "postal_code": "22202", "country": "US"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let r = http
        .post(url(&format!(
            "/api/v1/users/me/addresses/{}/default",
            ids[1]
        )))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let defaults: Vec<(String, bool)> =
        sqlx::query_as("SELECT city, is_default FROM addresses ORDER BY city")
            .fetch_all(&platform.user_db.pool)
            .await
            .unwrap();
    assert_eq!(
        defaults,
        [("Arlington".into(), false), ("New York".into(), true)]
    );

    let r = http
        .post(url("/api/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = http
        .get(url("/api/v1/users/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn the_router_routes_like_the_ingress() {
    let platform = spawn_platform().await;
    let base = &platform.base;
    let http = reqwest::Client::new();
    // Internal endpoints exist on the service but are never routed.
    let r = http
        .get(format!("{base}/internal/v1/users/x/addresses/y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "no service owns this path"
    );
    let r = http
        .get(format!("{base}/api/v1/usersx"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Query strings and error bodies pass through untouched.
    let r = http
        .get(format!("{base}/api/v1/users/me?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_logged_out_token_is_refused_by_every_service() {
    let platform = spawn_platform().await;
    let admin = platform.login(ADMIN.0, ADMIN.1).await;
    // A token minted by the user service works on the item service ...
    let r = platform
        .post("/api/v1/categories", Some(&admin), &json!({"name": "Tea"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // ... until logout, after which the item service refuses it too.
    let r = platform
        .post("/api/v1/auth/logout", Some(&admin), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = platform
        .post(
            "/api/v1/categories",
            Some(&admin),
            &json!({"name": "Coffee"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_stocks_the_catalogue_and_a_shopper_finds_it() {
    let platform = spawn_platform().await;
    let http = reqwest::Client::new();
    let url = |p: &str| platform.url(p);
    let admin = platform.login(ADMIN.0, ADMIN.1).await;
    let tea: Value = platform
        .post("/api/v1/categories", Some(&admin), &json!({"name": "Tea"}))
        .await
        .json()
        .await
        .unwrap();
    for (name, price) in [
        ("Sencha green tea", 1200),
        ("Assam black tea", 900),
        ("Cast iron teapot", 4500),
    ] {
        let item =
            json!({"name": name, "price_minor": price, "category_id": tea["id"], "stock": 10});
        let r = platform.post("/api/v1/items", Some(&admin), &item).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // A shopper, anonymous: search, then read a product page twice (the second from the cache).
    let found: Value = http
        .get(url("/api/v1/items?q=gree&sort=price_asc"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "Sencha green tea");
    let page = url(&format!(
        "/api/v1/items/{}",
        items[0]["id"].as_str().unwrap()
    ));
    let first: Value = http.get(&page).send().await.unwrap().json().await.unwrap();
    let second: Value = http.get(&page).send().await.unwrap().json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first["stock"], 10);
    // Stock reservations are internal: never routed publicly.
    let r = http
        .post(url("/internal/v1/stock/reservations"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
