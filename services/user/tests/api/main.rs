//! The user service over HTTP, against real PostgreSQL and Redis: each test spawns the app on
//! port 0 with its own database and Redis key prefix.

mod openapi;

use futures::future::join_all;
use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings, fields, problem};
use kommerce_user::{App, MIGRATIONS, Settings};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Who calls the service's internal routes, from its document: tests call them as those do.
static CALLERS: kommerce_kit::testing::InternalCallers =
    kommerce_kit::testing::InternalCallers::new("user", kommerce_user::openapi);

struct TestApp {
    base: String,
    http: Client,
    db: TestDatabase,
    redis: RedisNamespace,
}

struct Session {
    access: String,
    refresh: String,
    user_id: String,
}

const PASSWORD: &str = "correct horse battery";

impl TestApp {
    async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDatabase::create(MIGRATIONS).await;
        let redis = RedisNamespace::new();
        let mut settings = Settings {
            http: kommerce_kit::testing::local_http(),
            database: db.settings(),
            redis: redis.settings(),
            auth: auth_settings(),
            ..Settings::default()
        };
        tweak(&mut settings);
        let app = App::build(settings).await.expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        Self {
            base,
            http: Client::new(),
            db,
            redis,
        }
    }

    fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut r = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("request")
    }

    async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.http
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut r = self.http.get(self.url(path));
        r = CALLERS.attach(r, &reqwest::Method::GET, path);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("request")
    }

    async fn delete(&self, path: &str, token: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    async fn signup(&self, email: &str) -> Value {
        let r = self
            .post(
                "/api/v1/users",
                None,
                &json!({"email": email, "password": PASSWORD, "name": "Ada Lovelace", "phone": "+44 20 7946 0000"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    /// `POST /api/v1/auth/refresh` with `token` in the body (the JSON flow).
    async fn refresh(&self, token: &str) -> Response {
        self.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token}),
        )
        .await
    }

    async fn login_as(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    async fn login(&self, email: &str) -> Session {
        let r = self.login_as(email, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        session(&r.json().await.expect("json"))
    }

    async fn user(&self, email: &str) -> Session {
        self.signup(email).await;
        self.login(email).await
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .expect("count")
    }

    async fn add_address(&self, token: &str, city: &str) -> Value {
        let r = self
            .post("/api/v1/users/me/addresses", Some(token), &address(city))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.json().await.expect("json")
    }
}

fn session(v: &Value) -> Session {
    Session {
        access: v["access_token"].as_str().expect("access").to_owned(),
        refresh: v["refresh_token"].as_str().expect("refresh").to_owned(),
        user_id: v["user"]["id"].as_str().expect("id").to_owned(),
    }
}

fn address(city: &str) -> Value {
    json!({
        "recipient": "Ada Lovelace", "phone": "+44 20 7946 0000",
        "line1": "12 St James's Square", "city": city,
        "postal_code": "SW1Y 4JH", "country": "gb"
    })
}

#[tokio::test]
async fn signup_stores_a_hashed_password_and_never_returns_it() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/v1/users",
            None,
            &json!({"email": " Ada@Example.COM ", "password": PASSWORD, "name": "Ada", "phone": "(030) 123-4567"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["location"], "/api/v1/users/me");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["phone"], "0301234567");
    assert_eq!(body["role"], "customer");
    assert!(body.get("password_hash").is_none() && !body.to_string().contains("argon2"));
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ada@example.com'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test]
async fn bad_signups_get_a_problem_naming_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let ok =
        json!({"email": "a@b.co", "password": PASSWORD, "name": "Ada", "phone": "+4930123456"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let mut unknown = ok.clone();
    unknown["role"] = json!("admin");
    let mut missing = ok.clone();
    missing.as_object_mut().unwrap().remove("phone");
    let cases = [
        (with("email", json!("not-an-email")), "email"),
        (with("email", json!("a@b")), "email"),
        (with("phone", json!("12ab")), "phone"),
        (with("phone", json!("123")), "phone"),
        (with("password", json!("short")), "password"),
        (with("name", json!("   ")), "name"),
        (with("name", json!(7)), "name"),
        // PostgreSQL cannot store NUL in text: a 422 naming the field, never a 500.
        (with("name", json!("Ada\u{0}Lovelace")), "name"),
        (with("email", json!("\u{0}")), "email"),
        (unknown, "role"),
        (missing, "phone"),
    ];
    for (body, field) in cases {
        let (status, p) = problem(app.post("/api/v1/users", None, &body).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(fields(&p), [field], "{body}");
    }
    // Several bad fields are reported together.
    let all_bad = json!({"email": "x", "password": "y", "name": "", "phone": "z"});
    let (_, p) = problem(app.post("/api/v1/users", None, &all_bad).await).await;
    assert_eq!(fields(&p), ["email", "password", "name", "phone"]);

    // Oversized, not JSON, malformed JSON.
    let huge = with("name", json!("x".repeat(100_000)));
    let (status, _) = problem(app.post("/api/v1/users", None, &huge).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = app
        .http
        .post(app.url("/api/v1/users"))
        .body("email=a@b.co")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app
        .http
        .post(app.url("/api/v1/users"))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@b.co""#)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::BAD_REQUEST);

    assert_eq!(
        app.count("SELECT count(*) FROM users").await,
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn an_email_can_hold_one_account_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.signup("ada@example.com").await;
    let r = app
        .post(
            "/api/v1/users",
            None,
            &json!({"email": "ADA@example.com", "password": PASSWORD, "name": "Eve", "phone": "+4930123456"}),
        )
        .await;
    let (status, p) = problem(r).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(p["type"], "https://kommerce.dev/problems/email-taken");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_indistinguishable() {
    let app = TestApp::spawn().await;
    app.signup("ada@example.com").await;
    let (s1, wrong) = problem(app.login_as("ada@example.com", "wrong password!").await).await;
    let (s2, unknown) = problem(app.login_as("nobody@example.com", PASSWORD).await).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(wrong, unknown, "same body for both");
    let (status, p) = problem(app.login_as("not an email", PASSWORD).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["email"]);
}

#[tokio::test]
async fn login_gives_tokens_that_open_the_profile() {
    let app = TestApp::spawn().await;
    app.signup("ada@example.com").await;
    let r = app.login_as("ADA@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 900);
    assert_eq!(v["refresh_expires_in"], 14 * 24 * 3600);
    let s = session(&v);
    let me: Value = app
        .get("/api/v1/users/me", Some(&s.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["id"], s.user_id.as_str());

    // No token, garbage, a token signed by another key: 401 problem.
    assert_eq!(
        problem(app.get("/api/v1/users/me", None).await).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        problem(app.get("/api/v1/users/me", Some("x.y.z")).await)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let foreign = kommerce_kit::auth::TokenSigner::new(&auth_settings()).unwrap();
    let (forged, _) = foreign
        .sign(
            s.user_id.parse().unwrap(),
            kommerce_kit::auth::Role::Admin,
            uuid::Uuid::new_v4(),
        )
        .unwrap();
    assert_eq!(
        problem(app.get("/api/v1/users/me", Some(&forged)).await)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // The refresh token is stored only as a digest.
    let mut redis = redis::Client::open(kommerce_kit::testing::redis_url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.redis.prefix))
        .query(&mut redis)
        .unwrap();
    assert!(keys.iter().all(|k| !k.contains(&s.refresh)), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.contains(":user:refresh:")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let first = app.user("ada@example.com").await;
    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second = session(&r.json().await.unwrap());
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(
        app.get("/api/v1/users/me", Some(&second.access))
            .await
            .status(),
        StatusCode::OK
    );

    // The first refresh token again: reuse → 401, and the family is gone.
    let r = app.refresh(&first.refresh).await;
    assert_eq!(problem(r).await.0, StatusCode::UNAUTHORIZED);
    let r = app.refresh(&second.refresh).await;
    assert_eq!(
        problem(r).await.0,
        StatusCode::UNAUTHORIZED,
        "the rotated-to token is revoked too"
    );
    assert_eq!(
        app.get("/api/v1/users/me", Some(&second.access))
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "and so are the session's access tokens"
    );

    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": "made-up"}),
        )
        .await;
    assert_eq!(problem(r).await.0, StatusCode::UNAUTHORIZED);
}

/// A browser's session: `Kommerce-Session: cookie` on login, refresh and logout.
async fn cookie_call(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    access: Option<&str>,
    https: bool,
    body: &Value,
) -> Response {
    let mut r = app
        .http
        .post(app.url(path))
        .header("Kommerce-Session", "cookie")
        .json(body);
    if let Some(c) = cookie {
        r = r.header("Cookie", format!("lang=ko; kommerce_refresh={c}"));
    }
    if let Some(t) = access {
        r = r.bearer_auth(t);
    }
    if https {
        r = r.header("X-Forwarded-Proto", "https");
    }
    r.send().await.expect("request")
}

/// The refresh token a response's `Set-Cookie` holds ("" when it clears it) and the cookie's
/// attributes.
fn set_cookie(r: &Response) -> (String, String) {
    let all: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ASCII"))
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    let (pair, attributes) = all[0].split_once("; ").expect("attributes");
    let value = pair.strip_prefix("kommerce_refresh=").expect(all[0]);
    (value.to_owned(), attributes.to_owned())
}

#[tokio::test]
async fn a_browser_session_keeps_its_refresh_token_in_an_http_only_cookie() {
    let app = TestApp::spawn().await;
    app.signup("ada@example.com").await;
    let creds = json!({"email": "ada@example.com", "password": PASSWORD});

    let r = cookie_call(&app, "/api/v1/auth/login", None, None, false, &creds).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (first, attributes) = set_cookie(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        attributes,
        format!(
            "Path=/api/v1/auth; Max-Age={}; HttpOnly; SameSite=Strict",
            body["refresh_expires_in"]
        )
    );
    assert!(
        body.get("refresh_token").is_none(),
        "never in the body: {body}"
    );
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/users/me", Some(&access)).await.status(),
        StatusCode::OK
    );

    // A refresh by cookie, body `{}`: the next token in the cookie, none in the body.
    let r = cookie_call(
        &app,
        "/api/v1/auth/refresh",
        Some(&first),
        None,
        true,
        &json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (second, attributes) = set_cookie(&r);
    assert_ne!(second, first);
    assert!(attributes.ends_with("; Secure"), "over HTTPS: {attributes}");
    let body: Value = r.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();

    // The used cookie again: a replay ends the session, and the browser is told to forget it.
    let r = cookie_call(
        &app,
        "/api/v1/auth/refresh",
        Some(&first),
        None,
        false,
        &json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(set_cookie(&r).0, "");
    assert_eq!(
        app.get("/api/v1/users/me", Some(&access)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // No cookie at all: 401 (what a page gets when it restores a session that never was).
    let r = cookie_call(&app, "/api/v1/auth/refresh", None, None, false, &json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Logout clears the cookie and ends the session.
    let r = cookie_call(&app, "/api/v1/auth/login", None, None, false, &creds).await;
    let (third, _) = set_cookie(&r);
    let access = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = cookie_call(
        &app,
        "/api/v1/auth/logout",
        None,
        Some(&access),
        false,
        &json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        set_cookie(&r),
        (
            String::new(),
            "Path=/api/v1/auth; Max-Age=0; HttpOnly; SameSite=Strict".into()
        )
    );
    let r = cookie_call(
        &app,
        "/api/v1/auth/refresh",
        Some(&third),
        None,
        false,
        &json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_json_flow_ignores_cookies_and_needs_the_token_in_the_body() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    // Without the mode header a cookie is not read: the body must name the token.
    let r = app
        .http
        .post(app.url("/api/v1/auth/refresh"))
        .header("Cookie", format!("kommerce_refresh={}", s.refresh))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["refresh_token"]);
    // The token is still good: the refused request used nothing.
    let r = app.refresh(&s.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_let_at_most_one_through() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    let body = json!({"refresh_token": s.refresh});
    let (a, b) = tokio::join!(
        app.post("/api/v1/auth/refresh", None, &body),
        app.post("/api/v1/auth/refresh", None, &body)
    );
    let ok = [a.status(), b.status()]
        .iter()
        .filter(|s| **s == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "{} {}", a.status(), b.status());
}

#[tokio::test]
async fn logout_refuses_the_old_access_token_and_refresh_token() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    let other = app.login("ada@example.com").await;
    let r = app
        .post("/api/v1/auth/logout", Some(&s.access), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        problem(app.get("/api/v1/users/me", Some(&s.access)).await)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let r = app.refresh(&s.refresh).await;
    assert_eq!(problem(r).await.0, StatusCode::UNAUTHORIZED);
    let r = app
        .post("/api/v1/auth/logout", Some(&s.access), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "logging out twice");
    // Another session of the same user is untouched.
    assert_eq!(
        app.get("/api/v1/users/me", Some(&other.access))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn profile_updates_and_bad_updates_change_nothing() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    let r = app
        .patch(
            "/api/v1/users/me",
            &s.access,
            &json!({"name": "Ada King", "phone": "+49 30 999999"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["name"].as_str(), v["phone"].as_str()),
        (Some("Ada King"), Some("+4930999999"))
    );

    for (body, field) in [
        (json!({"name": "Eve", "phone": "nope"}), "phone"),
        (json!({"email": "x@y.zz"}), "email"),
        (json!({}), "body"),
        (json!({"new_password": "0123456789abc"}), "current_password"),
    ] {
        let (status, p) = problem(app.patch("/api/v1/users/me", &s.access, &body).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(fields(&p), [field], "{body}");
    }
    let name: String = sqlx::query_scalar("SELECT name FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(name, "Ada King", "the bad updates changed nothing");
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let mine = app.user("ada@example.com").await;
    let other = app.login("ada@example.com").await;
    let change =
        |current: &str| json!({"current_password": current, "new_password": "a brand new secret"});

    let (status, p) = problem(
        app.patch("/api/v1/users/me", &mine.access, &change("wrong password"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["current_password"]);
    assert_eq!(
        app.get("/api/v1/users/me", Some(&other.access))
            .await
            .status(),
        StatusCode::OK
    );

    let r = app
        .patch("/api/v1/users/me", &mine.access, &change(PASSWORD))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/users/me", Some(&mine.access))
            .await
            .status(),
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        app.get("/api/v1/users/me", Some(&other.access))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app.refresh(&other.refresh).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app.refresh(&mine.refresh).await;
    assert_eq!(r.status(), StatusCode::OK, "this session can still refresh");
    assert_eq!(
        app.login_as("ada@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_as("ada@example.com", "a brand new secret")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn addresses_keep_exactly_one_default() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    let home = app.add_address(&s.access, "London").await;
    assert_eq!(home["is_default"], true, "the first address is the default");
    assert_eq!(home["country"], "GB");
    let work = app.add_address(&s.access, "Cambridge").await;
    assert_eq!(work["is_default"], false);
    let cottage = app.add_address(&s.access, "Bath").await;

    let path = |a: &Value| format!("/api/v1/users/me/addresses/{}", a["id"].as_str().unwrap());
    let r = app
        .post(
            &format!("{}/default", path(&work)),
            Some(&s.access),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Vec<Value> = app
        .get("/api/v1/users/me/addresses", Some(&s.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["id"], work["id"], "the default is listed first");
    assert_eq!(list.iter().filter(|a| a["is_default"] == true).count(), 1);

    // Deleting the default promotes the most recently used other address.
    let r = app
        .patch(&path(&home), &s.access, &json!({"label": "Home"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&path(&work), &s.access).await.status(),
        StatusCode::NO_CONTENT
    );
    let list: Vec<Value> = app
        .get("/api/v1/users/me/addresses", Some(&s.access))
        .await
        .json()
        .await
        .unwrap();
    let defaults: Vec<_> = list.iter().filter(|a| a["is_default"] == true).collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["id"], home["id"], "home was used last (edited)");
    assert_eq!(defaults[0]["label"], "Home");

    // Deleting everything leaves no default; adding again makes a new default.
    for a in [&home, &cottage] {
        assert_eq!(
            app.delete(&path(a), &s.access).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM addresses").await, 0);
    assert_eq!(app.add_address(&s.access, "York").await["is_default"], true);
    let mut asked = address("Leeds");
    asked["default"] = json!(true);
    let r = app
        .post("/api/v1/users/me/addresses", Some(&s.access), &asked)
        .await;
    let leeds: Value = r.json().await.unwrap();
    assert_eq!(
        leeds["is_default"], true,
        "a new address can ask to be the default"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM addresses WHERE is_default")
            .await,
        1
    );
}

#[tokio::test]
async fn the_database_itself_enforces_one_default() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    let a = app.add_address(&s.access, "London").await;
    app.add_address(&s.access, "Paris").await;
    // A second default is refused by the partial unique index ...
    let two = sqlx::query("UPDATE addresses SET is_default = true")
        .execute(app.pool())
        .await;
    let err = two.expect_err("two defaults");
    assert_eq!(
        err.as_database_error().unwrap().constraint(),
        Some("addresses_one_default_per_user")
    );
    // ... and no default while addresses exist is refused at commit.
    let none = sqlx::query("UPDATE addresses SET is_default = false WHERE id = $1")
        .bind(a["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap())
        .execute(app.pool())
        .await;
    assert!(none.unwrap_err().to_string().contains("no default address"));
    assert_eq!(
        app.count("SELECT count(*) FROM addresses WHERE is_default")
            .await,
        1
    );
}

#[tokio::test]
async fn concurrent_default_switches_leave_exactly_one_default() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    let mut ids = Vec::new();
    for city in ["A-town", "B-town", "C-town", "D-town", "E-town", "F-town"] {
        ids.push(
            app.add_address(&s.access, city).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/api/v1/users/me/addresses/{id}/default"))
        .collect();
    let empty = json!({});
    let switches = paths.iter().map(|p| app.post(p, Some(&s.access), &empty));
    for r in join_all(switches).await {
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM addresses WHERE is_default")
            .await,
        1
    );
}

#[tokio::test]
async fn at_most_twenty_addresses_even_when_added_at_once() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    for i in 0..18 {
        app.add_address(&s.access, &format!("City {i}")).await;
    }
    let body = address("Overflow");
    let adds = (0..4).map(|_| app.post("/api/v1/users/me/addresses", Some(&s.access), &body));
    let results = join_all(adds).await;
    let created = results
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    let refused = results
        .iter()
        .filter(|r| r.status() == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, refused), (2, 2));
    assert_eq!(app.count("SELECT count(*) FROM addresses").await, 20);
    let (status, p) = problem(
        app.post("/api/v1/users/me/addresses", Some(&s.access), &body)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(p["type"], "https://kommerce.dev/problems/address-limit");
}

#[tokio::test]
async fn bad_addresses_are_refused_field_by_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let s = app.user("ada@example.com").await;
    let mut bad = address("London");
    bad["country"] = json!("Britain");
    bad["postal_code"] = json!("!!");
    bad["line1"] = json!("");
    let (status, p) = problem(
        app.post("/api/v1/users/me/addresses", Some(&s.access), &bad)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["line1", "postal_code", "country"]);
    let mut extra = address("London");
    extra["user_id"] = json!(s.user_id);
    let (_, p) = problem(
        app.post("/api/v1/users/me/addresses", Some(&s.access), &extra)
            .await,
    )
    .await;
    assert_eq!(fields(&p), ["user_id"]);
    assert_eq!(app.count("SELECT count(*) FROM addresses").await, 0);

    let a = app.add_address(&s.access, "London").await;
    let path = format!("/api/v1/users/me/addresses/{}", a["id"].as_str().unwrap());
    let (status, p) = problem(
        app.patch(&path, &s.access, &json!({"city": "", "phone": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["phone", "city"]);
    let stored: Value = app.get(&path, Some(&s.access)).await.json().await.unwrap();
    assert_eq!(stored["city"], "London");
}

#[tokio::test]
async fn another_users_address_is_not_found_for_every_verb() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let eve = app.user("eve@example.com").await;
    let a = app.add_address(&ada.access, "London").await;
    let path = format!("/api/v1/users/me/addresses/{}", a["id"].as_str().unwrap());
    assert_eq!(
        problem(app.get(&path, Some(&eve.access)).await).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        problem(
            app.patch(&path, &eve.access, &json!({"city": "Paris"}))
                .await
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        problem(app.delete(&path, &eve.access).await).await.0,
        StatusCode::NOT_FOUND
    );
    let r = app
        .post(&format!("{path}/default"), Some(&eve.access), &json!({}))
        .await;
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        problem(
            app.get("/api/v1/users/me/addresses/not-a-uuid", Some(&eve.access))
                .await
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let eves: Vec<Value> = app
        .get("/api/v1/users/me/addresses", Some(&eve.access))
        .await
        .json()
        .await
        .unwrap();
    assert!(eves.is_empty());
    let stored: Value = app
        .get(&path, Some(&ada.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["city"], "London", "untouched");
}

#[tokio::test]
async fn the_internal_address_lookup_checks_ownership() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let eve = app.user("eve@example.com").await;
    let a = app.add_address(&ada.access, "London").await;
    let id = a["id"].as_str().unwrap();
    let r = app
        .get(
            &format!("/internal/v1/users/{}/addresses/{id}", ada.user_id),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["city"].as_str(), v["user_id"].as_str()),
        (Some("London"), Some(ada.user_id.as_str()))
    );
    let r = app
        .get(
            &format!("/internal/v1/users/{}/addresses/{id}", eve.user_id),
            None,
        )
        .await;
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_admin_is_bootstrapped_from_settings() {
    let app = TestApp::spawn_with(|s| {
        s.user.bootstrap_admin_email = Some("root@kommerce.dev".into());
        s.user.bootstrap_admin_password = Some(kommerce_kit::Secret::new("admin password 1"));
    })
    .await;
    let r = app.login_as("root@kommerce.dev", "admin password 1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["user"]["role"], "admin");
    // Running it again (a restart) promotes, never duplicates.
    let created = kommerce_user::create_admin(
        app.pool(),
        "root@kommerce.dev",
        "another password",
        "Root",
        "+10000000000",
    )
    .await
    .unwrap();
    assert!(!created);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE role = 'admin'")
            .await,
        1
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_unknown_routes() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["checks"],
        json!({"postgres": "ok", "redis": "ok", "workers": "ok"})
    );

    app.signup("ada@example.com").await;
    let r = app
        .http
        .get(app.url("/api/v1/nothing-here"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42", "request id echoed");
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
    let r = app.http.put(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(problem(r).await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        app.get("/healthz", None)
            .await
            .headers()
            .contains_key("x-request-id"),
        "generated when absent"
    );

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let signup = metrics.lines().find(|l| {
        l.starts_with("http_requests_total")
            && l.contains(r#"route="/api/v1/users""#)
            && l.contains(r#"status="201""#)
    });
    assert!(signup.is_some(), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"));
}

/// Another replica of `app`'s service: same database, same Redis prefix.
async fn replica(app: &TestApp, tweak: impl FnOnce(&mut Settings)) -> String {
    let mut settings = Settings {
        http: kommerce_kit::testing::local_http(),
        database: app.db.settings(),
        redis: app.redis.settings(),
        auth: auth_settings(),
        ..Settings::default()
    };
    tweak(&mut settings);
    let replica = App::build(settings).await.expect("replica builds");
    let base = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until(std::future::pending()));
    base
}

async fn login_at(base: &str, client: Option<&str>, email: &str, password: &str) -> Response {
    let mut r = Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(ip) = client {
        r = r.header("x-forwarded-for", ip);
    }
    r.send().await.expect("request")
}

async fn assert_throttled(r: Response, window: u64) {
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=window).contains(&retry), "Retry-After {retry}");
    let (status, p) = problem(r).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(p["type"], "https://kommerce.dev/problems/too-many-requests");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_a_success_clears_them() {
    let app = TestApp::spawn_with(|s| {
        s.throttle.login_failures_per_account = 3;
        s.throttle.window_secs = 60;
    })
    .await;
    app.signup("ada@example.com").await;
    for _ in 0..2 {
        assert_eq!(
            app.login_as("ada@example.com", "wrong password")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // A success clears the account's count: three more failures are needed now.
    assert_eq!(
        app.login_as("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    for _ in 0..3 {
        assert_eq!(
            app.login_as("ada@example.com", "wrong password")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Past the limit even the right password is refused until the window ends.
    assert_throttled(app.login_as("ada@example.com", PASSWORD).await, 60).await;
    // An unknown account is counted the same way (nothing tells the two apart).
    for _ in 0..3 {
        assert_eq!(
            app.login_as("nobody@example.com", "x").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_throttled(app.login_as("nobody@example.com", "x").await, 60).await;
}

#[tokio::test]
async fn failures_per_address_count_across_accounts_and_replicas_and_only_a_trusted_proxy_names_the_client()
 {
    let app = TestApp::spawn_with(|s| {
        s.throttle.login_failures_per_address = 4;
        s.throttle.window_secs = 60;
    })
    .await;
    let other = replica(&app, |s| {
        s.throttle.login_failures_per_address = 4;
        s.throttle.window_secs = 60;
    })
    .await;
    app.signup("ada@example.com").await;
    let mallory = Some("198.51.100.7");
    // Four failures from one client, spread over two accounts and both replicas.
    for (i, base) in [&app.base, &other, &app.base, &other]
        .into_iter()
        .enumerate()
    {
        let email = if i % 2 == 0 {
            "ada@example.com"
        } else {
            "bob@example.com"
        };
        assert_eq!(
            login_at(base, mallory, email, "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_throttled(
        login_at(&app.base, mallory, "carol@example.com", "guess").await,
        60,
    )
    .await;
    assert_throttled(
        login_at(&other, mallory, "ada@example.com", PASSWORD).await,
        60,
    )
    .await;
    // Another client (as the router names it) is not affected.
    let r = login_at(&other, Some("198.51.100.8"), "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);

    // A service that trusts no proxy believes no header: every request is the TCP peer's.
    let strict = replica(&app, |s| {
        s.http.trusted_proxies = vec![];
        s.throttle.login_failures_per_address = 2;
    })
    .await;
    for ip in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(
            login_at(&strict, Some(ip), "bob@example.com", "guess")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_throttled(
        login_at(&strict, Some("203.0.113.3"), "bob@example.com", "guess").await,
        900,
    )
    .await;
}

#[tokio::test]
async fn signups_are_throttled_per_address_and_a_refused_one_stores_nothing() {
    let app = TestApp::spawn_with(|s| s.throttle.signups_per_address = 2).await;
    app.signup("a@example.com").await;
    app.signup("b@example.com").await;
    let r = app
        .post(
            "/api/v1/users",
            None,
            &json!({"email": "c@example.com", "password": PASSWORD, "name": "C", "phone": "+44 20 7946 0000"}),
        )
        .await;
    assert_throttled(r, 900).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(users, 2);
}
