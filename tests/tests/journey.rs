//! A new user's first minutes, through the local router exactly as `kommerce up` serves it:
//! signup → login → me → two addresses → switch default → logout → the old token is refused.

use std::collections::HashMap;

use kommerce::topology::SERVICES;
use kommerce_kit::HttpSettings;
use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings};
use kommerce_user::{App, MIGRATOR, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn spawn_platform() -> (String, TestDatabase, RedisNamespace) {
    let db = TestDatabase::create(&MIGRATOR).await;
    let redis = RedisNamespace::new();
    let user = App::build(Settings {
        http: HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            ..HttpSettings::default()
        },
        database: db.settings(),
        redis: redis.settings(),
        auth: auth_settings(),
        ..Settings::default()
    })
    .await
    .expect("user service builds");
    let upstreams = HashMap::from([("user", format!("127.0.0.1:{}", user.port()))]);
    tokio::spawn(user.run_until(std::future::pending()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = kommerce::router::router(SERVICES, upstreams);
    tokio::spawn(async move { axum_serve(listener, router).await });
    (base, db, redis)
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) {
    axum::serve(listener, router).await.expect("router serves");
}

#[tokio::test]
async fn a_new_user_signs_up_manages_addresses_and_logs_out() {
    let (base, db, _redis) = spawn_platform().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{base}{p}");

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
            .fetch_all(&db.pool)
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
    let (base, _db, _redis) = spawn_platform().await;
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
