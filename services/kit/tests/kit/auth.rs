//! The auth extractors against real Redis: valid tokens pass, admin-only routes refuse
//! customers, and the deny-list written at logout is honoured by any service using the kit.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use kommerce_kit::auth::{
    AdminUser, AuthUser, Role, TokenSigner, TokenVerifier, deny_key, session_revoked_key,
};
use kommerce_kit::cache::Redis;
use kommerce_kit::http::ApiError;
use kommerce_kit::testing::{RedisNamespace, auth_settings};
use tower::ServiceExt;
use uuid::Uuid;

#[derive(Clone)]
struct State(Arc<TokenVerifier>);

impl FromRef<State> for Arc<TokenVerifier> {
    fn from_ref(s: &State) -> Self {
        s.0.clone()
    }
}

async fn setup() -> (Router, TokenSigner, Redis, RedisNamespace) {
    let ns = RedisNamespace::new();
    let redis = Redis::connect(&ns.settings())
        .await
        .expect("redis (run scripts/deps.sh)");
    let auth = auth_settings();
    let verifier = TokenVerifier::new(&auth, redis.clone()).unwrap();
    let signer = TokenSigner::new(&auth).unwrap();
    let app = Router::new()
        .route("/me", get(|u: AuthUser| async move { u.id.to_string() }))
        .route(
            "/admin",
            get(|AdminUser(u): AdminUser| async move { u.role.as_str() }),
        )
        .with_state(State(Arc::new(verifier)));
    (app, signer, redis, ns)
}

async fn call(app: &Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn customers_pass_auth_but_not_the_admin_guard() {
    let (app, signer, _redis, _ns) = setup().await;
    let user = Uuid::new_v4();
    let (customer, _) = signer.sign(user, Role::Customer, Uuid::new_v4()).unwrap();
    let (admin, _) = signer
        .sign(Uuid::new_v4(), Role::Admin, Uuid::new_v4())
        .unwrap();
    assert_eq!(
        call(&app, "/me", Some(&customer)).await,
        (StatusCode::OK, user.to_string())
    );
    let (status, body) = call(&app, "/admin", Some(&customer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("admin role required"), "{body}");
    assert_eq!(
        call(&app, "/admin", Some(&admin)).await,
        (StatusCode::OK, "admin".into())
    );
    assert_eq!(call(&app, "/admin", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, "/me", Some("garbage")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn denied_tokens_and_revoked_sessions_are_refused() {
    let (app, signer, redis, _ns) = setup().await;
    let sid = Uuid::new_v4();
    let (a, claims_a) = signer.sign(Uuid::new_v4(), Role::Customer, sid).unwrap();
    let (b, _) = signer.sign(Uuid::new_v4(), Role::Customer, sid).unwrap();
    let (other, _) = signer
        .sign(Uuid::new_v4(), Role::Customer, Uuid::new_v4())
        .unwrap();

    let mut conn = redis.conn();
    let () = redis::cmd("SET")
        .arg(deny_key(&redis, claims_a.jti))
        .arg(1)
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        call(&app, "/me", Some(&a)).await.0,
        StatusCode::UNAUTHORIZED,
        "denied jti"
    );
    assert_eq!(
        call(&app, "/me", Some(&b)).await.0,
        StatusCode::OK,
        "same session, other token"
    );

    let () = redis::cmd("SET")
        .arg(session_revoked_key(&redis, sid))
        .arg(1)
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        call(&app, "/me", Some(&b)).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked session"
    );
    assert_eq!(
        call(&app, "/me", Some(&other)).await.0,
        StatusCode::OK,
        "other sessions unaffected"
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let ns = RedisNamespace::new();
    let redis = Redis::connect(&ns.settings()).await.unwrap();
    let mut auth = auth_settings();
    auth.access_ttl_secs = 0;
    let signer = TokenSigner::new(&auth).unwrap();
    let verifier = TokenVerifier::new(&auth, redis).unwrap();
    let (token, claims) = signer
        .sign(Uuid::new_v4(), Role::Customer, Uuid::new_v4())
        .unwrap();
    assert_eq!(claims.exp, claims.iat);
    // Within the 5 s leeway it still passes; a token minted to expire 10 s ago does not.
    assert!(verifier.verify(&token).await.is_ok());
    let past = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &kommerce_kit::auth::Claims {
            exp: claims.iat - 10,
            ..claims
        },
        &jsonwebtoken::EncodingKey::from_ed_der(&base64_decode(auth.signing_key.expose())),
    )
    .unwrap();
    assert!(
        matches!(verifier.verify(&past).await, Err(ApiError::Unauthorized)),
        "an expired token is a 401"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
