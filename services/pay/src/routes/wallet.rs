//! `/api/v1/wallet`: the caller's balance, its ledger, and top-ups.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use kommerce_kit::auth::AuthUser;
use kommerce_kit::http::{ApiError, ApiJson, IdempotencyKey};
use kommerce_kit::openapi::IdempotencyHeader;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::domain::payment;
use crate::store::{self, Entry};

/// The caller's wallet.
#[derive(Debug, Serialize, ToSchema)]
pub struct Wallet {
    pub balance_minor: i64,
    /// The latest 50 entries, newest first.
    pub entries: Vec<Entry>,
}

/// A wallet's balance after a top-up.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WalletBalance)]
pub struct Balance {
    pub balance_minor: i64,
}

/// The caller's wallet.
///
/// Its balance and the latest 50 ledger entries (an empty wallet until the first top-up).
#[utoipa::path(
    get,
    path = "/api/v1/wallet",
    operation_id = "get_wallet",
    security(("bearer" = [])),
    responses((status = 200, description = "The wallet.", body = Wallet)),
)]
pub async fn get(State(s): State<AppState>, user: AuthUser) -> Result<Json<Wallet>, ApiError> {
    let mut conn = s.db.acquire().await?;
    let (balance_minor, entries) = store::wallet(&mut conn, user.id).await?;
    Ok(Json(Wallet {
        balance_minor,
        entries,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    /// At most the configured maximum (`wallet.max_top_up_minor`).
    #[schema(minimum = 1)]
    amount_minor: i64,
}

/// Adds money to the caller's wallet.
///
/// Bounded by `wallet.max_top_up_minor`; with an `Idempotency-Key` a repeat adds nothing, and
/// an unusable key is a 400 (never ignored: the top-up would apply twice on a retry).
#[utoipa::path(
    post,
    path = "/api/v1/wallet/top-up",
    operation_id = "top_up_wallet",
    security(("bearer" = [])),
    params(IdempotencyHeader),
    request_body = TopUpBody,
    responses((status = 200, description = "Added (or a repeat of the key: nothing added).", body = Balance)),
)]
pub async fn top_up(
    State(s): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TopUpBody>,
) -> Result<Json<Balance>, ApiError> {
    let key = IdempotencyKey::optional(&headers)?;
    let amount = payment::top_up(body.amount_minor, s.wallet.max_top_up_minor)
        .map_err(|m| ApiError::field("amount_minor", m))?;
    let mut tx = s.db.begin().await?;
    let balance = match store::top_up(
        &mut tx,
        user.id,
        amount,
        key.as_ref().map(IdempotencyKey::as_str),
    )
    .await?
    {
        store::TopUp::Added { balance } | store::TopUp::Repeated { balance } => balance,
        store::TopUp::KeyReused => {
            return Err(ApiError::field(
                "Idempotency-Key",
                "was already used with a different amount",
            ));
        }
    };
    tx.commit().await?;
    Ok(Json(Balance {
        balance_minor: balance,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{HeaderValue, Request, StatusCode, header};
    use http_body_util::BodyExt;
    use kommerce_kit::auth::{Role, TokenSigner, TokenVerifier};
    use kommerce_kit::cache::Redis;
    use kommerce_kit::peer::Peer;
    use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings};
    use tower::ServiceExt;
    use uuid::Uuid;

    use crate::{AppState, MIGRATIONS, config, router, store};

    struct Harness {
        _db: TestDatabase,
        _redis: RedisNamespace,
        state: AppState,
        user: Uuid,
        token: String,
    }

    async fn harness() -> Harness {
        let db = TestDatabase::create(MIGRATIONS).await;
        let ns = RedisNamespace::new();
        let auth = auth_settings();
        let redis = Redis::connect(&ns.settings()).await.unwrap();
        let verifier = Arc::new(TokenVerifier::new(&auth, redis).unwrap());
        let user = Uuid::new_v4();
        let (token, _) = TokenSigner::new(&auth)
            .unwrap()
            .sign(user, Role::Customer, Uuid::new_v4())
            .unwrap();
        // No peer is called by a top-up.
        let nowhere = |name| Peer::new(name, "http://127.0.0.1:1", Duration::from_secs(1));
        let state = AppState {
            db: db.pool.clone(),
            verifier,
            user: kommerce_contracts::user::UserClient(nowhere("user")),
            item: kommerce_contracts::item::ItemClient(nowhere("item")),
            order: kommerce_contracts::order::OrderClient(nowhere("order")),
            payments_topic: "payments".into(),
            wallet: config::WalletSettings::default(),
            live: kommerce_kit::live::Live::fixed(config::Settings::default()),
        };
        Harness {
            _db: db,
            _redis: ns,
            state,
            user,
            token,
        }
    }

    async fn top_up(h: &Harness, key: Option<&[u8]>) -> (StatusCode, serde_json::Value) {
        let mut req = Request::post("/api/v1/wallet/top-up")
            .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            req = req.header("idempotency-key", HeaderValue::from_bytes(key).unwrap());
        }
        let req = req.body(Body::from(r#"{"amount_minor":500}"#)).unwrap();
        let res = router(h.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn balance(h: &Harness) -> (i64, usize) {
        let mut conn = h.state.db.acquire().await.unwrap();
        let (balance, entries) = store::wallet(&mut conn, h.user).await.unwrap();
        (balance, entries.len())
    }

    #[tokio::test]
    async fn an_unusable_idempotency_key_is_a_400_and_changes_nothing() {
        let h = harness().await;
        for bad in [&b"\xff"[..], b"", b"has space", "x".repeat(256).as_bytes()] {
            let (status, body) = top_up(&h, Some(bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert_eq!(body["errors"][0]["field"], "Idempotency-Key", "{bad:?}");
        }
        assert_eq!(balance(&h).await, (0, 0), "nothing was topped up");

        // A usable key still makes a repeat add nothing.
        for _ in 0..2 {
            let (status, body) = top_up(&h, Some(b"top-up-1")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["balance_minor"], 500);
        }
        assert_eq!(balance(&h).await, (500, 1));
    }
}
