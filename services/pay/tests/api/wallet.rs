//! `/api/v1/wallet`: the caller's balance, its ledger, and bounded top-ups.

use kommerce_kit::testing::{fields, problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn a_new_wallet_is_empty_and_every_top_up_is_a_ledger_entry() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(0).await;
    assert_eq!(app.wallet(&ada).await, (0, vec![]));

    let r = app.top_up(&ada, 500, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"balance_minor": 500})
    );
    let r = app.top_up(&ada, 250, None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["balance_minor"], 750);

    assert_eq!(
        app.wallet(&ada).await,
        (
            750,
            vec![(250, "top_up".into(), None), (500, "top_up".into(), None)]
        ),
        "newest first"
    );
    let stored: i64 = sqlx::query_scalar("SELECT balance_minor FROM wallets WHERE user_id = $1")
        .bind(ada.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(stored, 750);

    let bob = app.shopper(0).await;
    assert_eq!(app.balance(&bob).await, 0, "one wallet per user");
    let (status, _) = problem(app.get("/api/v1/wallet", None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_top_up_out_of_bounds_is_422_naming_the_amount_and_adds_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(0).await;
    for (body, field) in [
        (json!({"amount_minor": 0}), "amount_minor"),
        (json!({"amount_minor": -500}), "amount_minor"),
        (json!({"amount_minor": 1_000_001}), "amount_minor"),
        (json!({"amount_minor": "ten"}), "amount_minor"),
        (json!({"amount_minor": 1.5}), "amount_minor"),
        (json!({}), "amount_minor"),
        (json!({"amount_minor": 10, "currency": "EUR"}), "currency"),
    ] {
        let (status, p) = problem(app.top_up_with(&ada, &body, None).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(fields(&p), [field], "{body}");
    }
    assert_eq!(app.wallet(&ada).await, (0, vec![]), "nothing was added");
    assert_eq!(app.scalar("SELECT count(*) FROM wallet_entries").await, 0);

    // The bound itself is allowed.
    let r = app.top_up(&ada, 1_000_000, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.balance(&ada).await, 1_000_000);
}

#[tokio::test]
async fn a_top_up_repeated_with_its_key_adds_once() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(0).await;
    for _ in 0..2 {
        let r = app.top_up(&ada, 300, Some("top-up-1")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["balance_minor"], 300);
    }
    let r = app.top_up(&ada, 300, Some("top-up-2")).await;
    assert_eq!(r.json::<Value>().await.unwrap()["balance_minor"], 600);
    assert_eq!(app.wallet(&ada).await.1.len(), 2);

    // Keys are per user: bob's first use of ada's key adds to bob's wallet.
    let bob = app.shopper(0).await;
    let r = app.top_up(&bob, 300, Some("top-up-1")).await;
    assert_eq!(r.json::<Value>().await.unwrap()["balance_minor"], 300);

    let (status, p) = problem(app.top_up(&ada, 300, Some("has space")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&p), ["Idempotency-Key"]);
    assert_eq!(app.balance(&ada).await, 600);
}

/// Regression: a key used again for another amount was answered 200 with the old balance, as if
/// the new amount had been added.
#[tokio::test]
async fn a_top_up_key_reused_for_another_amount_is_refused_and_adds_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(0).await;
    let r = app.top_up(&ada, 300, Some("top-up-1")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, p) = problem(app.top_up(&ada, 500, Some("top-up-1")).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["Idempotency-Key"]);
    assert_eq!(app.balance(&ada).await, 300);
    assert_eq!(app.wallet(&ada).await.1.len(), 1, "one ledger entry");
}
