//! `/api/v1/payments`: a checkout validated against the cart (order), the address (user) and
//! current prices (item), charged once per Idempotency-Key, stored with `payment.completed`.

use kommerce_contracts::money::{Money, Quantity};
use kommerce_contracts::saga::{PaidLine, PaymentCompleted};
use kommerce_kit::messaging::Event;
use kommerce_kit::testing::{fields, problem};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_wallet_payment_is_charged_once_per_key_and_announced() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(10_000).await;
    let lamp = app.peers.item("Lamp", 1_250);
    let mug = app.peers.item("Mug", 400);
    let lamps = app.peers.cart_line(&ada, lamp, 2);
    let mugs = app.peers.cart_line(&ada, mug, 1);

    let r = app.pay(&ada, &[lamps, mugs], 2_900, "wallet", "k-1").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let paid: Value = r.json().await.unwrap();
    let id: Uuid = paid["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(location, format!("/api/v1/payments/{id}"));
    assert_eq!(paid["status"], "pending_order");
    assert_eq!(paid["amount_minor"], 2_900);
    assert_eq!(paid["method"], "wallet");
    assert_eq!(paid["address_id"], ada.address_id.to_string());
    let lines = vec![
        PaidLine {
            item_id: lamp,
            name: "Lamp".into(),
            unit_price_minor: Money::minor(1_250),
            qty: Quantity::new(2),
        },
        PaidLine {
            item_id: mug,
            name: "Mug".into(),
            unit_price_minor: Money::minor(400),
            qty: Quantity::new(1),
        },
    ];
    assert_eq!(paid["lines"], json!(lines));

    // Charged: the balance, the ledger, the event and the saga's first step.
    assert_eq!(
        app.wallet(&ada).await,
        (
            7_100,
            vec![
                (-2_900, "charge".into(), Some(id)),
                (10_000, "top_up".into(), None)
            ]
        )
    );
    let events = app.emitted(PaymentCompleted::TYPE).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, id.to_string(), "keyed by the saga");
    assert_eq!(
        events[0].decode::<PaymentCompleted>().unwrap(),
        PaymentCompleted {
            payment_id: id,
            user_id: ada.id,
            amount_minor: Money::minor(2_900),
            method: "wallet".into(),
            lines,
            address: app.peers.address(ada.id, ada.address_id),
        }
    );
    let step: (String, String) =
        sqlx::query_as("SELECT step, outcome FROM saga_steps WHERE saga_id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        step,
        (
            "payment.completed".into(),
            "charged, waiting for the order".into()
        )
    );

    // The same key and request (lines in any order): the first answer, nothing charged again.
    for order in [[lamps, mugs], [mugs, lamps]] {
        let r = app.pay(&ada, &order, 2_900, "wallet", "k-1").await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        assert_eq!(r.json::<Value>().await.unwrap(), paid);
    }
    // The same key with another request: refused, naming the key.
    let (status, p) = problem(app.pay(&ada, &[lamps], 2_500, "wallet", "k-1").await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["Idempotency-Key"]);
    assert_eq!(app.balance(&ada).await, 7_100);
    assert_eq!(app.scalar("SELECT count(*) FROM payments").await, 1);
    assert_eq!(app.scalar("SELECT count(*) FROM outbox").await, 1);

    // Shown to its owner.
    let shown = app.payment(&ada, id).await;
    assert_eq!(shown["status"], "pending_order");
    assert_eq!(shown["order_id"], Value::Null);
    assert_eq!(shown["refunded_minor"], Value::Null);
    let mine = app.get_ok("/api/v1/payments", &ada).await;
    assert_eq!(mine["payments"].as_array().unwrap().len(), 1);
    assert_eq!(mine["payments"][0]["id"], id.to_string());
}

#[tokio::test]
async fn a_bad_request_is_refused_naming_the_field_before_anything_is_charged() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(10_000).await;
    let bob = app.shopper(0).await;
    let lamp = app.peers.item("Lamp", 1_000);
    let gone = app.peers.item("Gone", 500);
    let line = app.peers.cart_line(&ada, lamp, 2);
    let gone_line = app.peers.cart_line(&ada, gone, 1);
    let bobs_line = app.peers.cart_line(&bob, lamp, 1);
    app.peers.set_status(gone, "sold_out");
    let body = |lines: &[Uuid], amount: i64| json!({"cart_line_ids": lines, "address_id": ada.address_id, "amount_minor": amount, "method": "wallet"});

    let (status, p) = problem(app.pay_with(&ada, &body(&[line], 2_000), None).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no Idempotency-Key");
    assert_eq!(fields(&p), ["Idempotency-Key"]);

    let unprocessable = [
        (
            json!({"cart_line_ids": [], "address_id": ada.address_id, "amount_minor": 0, "method": "cash"}),
            vec!["cart_line_ids", "amount_minor", "method"],
        ),
        (body(&[line, line], 4_000), vec!["cart_line_ids"]),
        (
            json!({"cart_line_ids": [line], "amount_minor": 2_000, "method": "wallet"}),
            vec!["address_id"],
        ),
        (
            json!({"cart_line_ids": ["first"], "address_id": ada.address_id, "amount_minor": 2_000, "method": "wallet"}),
            vec!["cart_line_ids[0]"],
        ),
        // The amount must be the total at current prices; the message names it.
        (body(&[line], 1_999), vec!["amount_minor"]),
        // An item that left the sale is named by its place in the request.
        (body(&[line, gone_line], 2_500), vec!["cart_line_ids[1]"]),
    ];
    for (i, (request, want)) in unprocessable.iter().enumerate() {
        let (status, p) =
            problem(app.pay_with(&ada, request, Some(&format!("bad-{i}"))).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{request}: {p}");
        assert_eq!(&fields(&p), want, "{request}");
    }
    let (_, p) = problem(
        app.pay_with(&ada, &body(&[line], 1_999), Some("bad-amount"))
            .await,
    )
    .await;
    assert!(
        p["errors"][0]["message"].as_str().unwrap().contains("2000"),
        "{p}"
    );

    // Someone else's line, a line that does not exist, an address that is not mine: 404.
    for (request, key) in [
        (body(&[bobs_line], 1_000), "not-mine"),
        (body(&[Uuid::now_v7()], 1_000), "no-line"),
        (
            json!({"cart_line_ids": [line], "address_id": bob.address_id, "amount_minor": 2_000, "method": "wallet"}),
            "not-my-address",
        ),
    ] {
        let (status, _) = problem(app.pay_with(&ada, &request, Some(key)).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{key}");
    }

    assert_eq!(app.balance(&ada).await, 10_000, "nothing was charged");
    assert_eq!(app.scalar("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM outbox").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM saga_steps").await, 0);
}

#[tokio::test]
async fn a_wallet_that_cannot_cover_the_total_is_402_and_the_key_stays_usable() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(1_000).await;
    let lamp = app.peers.item("Lamp", 2_500);
    let line = app.peers.cart_line(&ada, lamp, 1);

    let (status, p) = problem(app.pay(&ada, &[line], 2_500, "wallet", "k-short").await).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(p["type"], "https://kommerce.dev/problems/payment-required");
    assert_eq!(app.balance(&ada).await, 1_000);
    assert_eq!(app.scalar("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM outbox").await, 0);

    // Nothing was kept under the key: after a top-up the same request goes through.
    app.top_up(&ada, 2_000, None).await;
    let r = app.pay(&ada, &[line], 2_500, "wallet", "k-short").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(app.balance(&ada).await, 500);
}

#[tokio::test]
async fn a_price_change_after_the_cart_was_shown_is_caught() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(10_000).await;
    let lamp = app.peers.item("Lamp", 1_000);
    let line = app.peers.cart_line(&ada, lamp, 3);
    app.peers.set_price(lamp, 1_100);

    let (status, p) = problem(app.pay(&ada, &[line], 3_000, "wallet", "old-price").await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["amount_minor"]);
    assert!(
        p["errors"][0]["message"].as_str().unwrap().contains("3300"),
        "{p}"
    );
    let id = app.paid(&ada, &[line], 3_300, "wallet").await;
    assert_eq!(
        app.payment(&ada, id).await["lines"][0]["unit_price_minor"],
        1_100
    );
    assert_eq!(app.balance(&ada).await, 6_700);
}

#[tokio::test]
async fn a_card_payment_leaves_the_wallet_alone() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(0).await;
    let lamp = app.peers.item("Lamp", 1_500);
    let line = app.peers.cart_line(&ada, lamp, 1);
    let id = app.paid(&ada, &[line], 1_500, "card").await;
    assert_eq!(app.wallet(&ada).await, (0, vec![]));
    let event: PaymentCompleted = app.emitted(PaymentCompleted::TYPE).await[0]
        .decode()
        .unwrap();
    assert_eq!((event.payment_id, event.method.as_str()), (id, "card"));
}

#[tokio::test]
async fn a_declined_card_charges_and_stores_nothing() {
    let app = TestApp::spawn_with(|s| s.card.failure_rate = 1.0).await;
    let ada = app.shopper(5_000).await;
    let lamp = app.peers.item("Lamp", 1_500);
    let line = app.peers.cart_line(&ada, lamp, 1);
    let (status, p) = problem(app.pay(&ada, &[line], 1_500, "card", "declined").await).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(p["detail"].as_str().unwrap().contains("declined"), "{p}");
    assert_eq!(app.scalar("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM outbox").await, 0);
    // The wallet is another method: unaffected by the card network.
    assert_eq!(
        app.pay(&ada, &[line], 1_500, "wallet", "by-wallet")
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn payments_are_their_owners_only_and_listed_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.shopper(10_000).await, app.shopper(0).await);
    let lamp = app.peers.item("Lamp", 100);
    let line = app.peers.cart_line(&ada, lamp, 1);
    let first = app.paid(&ada, &[line], 100, "wallet").await;
    let second = app.paid(&ada, &[line], 100, "wallet").await;

    let page = app.get_ok("/api/v1/payments?limit=1", &ada).await;
    assert_eq!(
        page["payments"][0]["id"],
        second.to_string(),
        "newest first"
    );
    assert_eq!(page["next_cursor"], second.to_string());
    let rest = app
        .get_ok(&format!("/api/v1/payments?limit=1&cursor={second}"), &ada)
        .await;
    assert_eq!(rest["payments"][0]["id"], first.to_string());

    for path in [
        format!("/api/v1/payments/{first}"),
        format!("/api/v1/payments/{}", Uuid::now_v7()),
        "/api/v1/payments/first".to_owned(),
    ] {
        let (status, _) = problem(app.get(&path, Some(&bob)).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        app.get_ok("/api/v1/payments", &bob).await["payments"],
        json!([])
    );
    let (status, p) = problem(app.get("/api/v1/payments?limit=0", Some(&ada)).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["limit"]);
    let (status, _) = problem(app.get("/api/v1/payments", None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_a_peer_down_a_payment_is_503_and_nothing_is_charged() {
    // Bound and never listening: every connection to it is refused.
    let down = kommerce_kit::testing::reserve_port();
    let nowhere = format!("http://127.0.0.1:{}", down.port());
    let app = TestApp::spawn_with(|s| s.peers.user = nowhere).await;
    let ada = app.shopper(5_000).await;
    let lamp = app.peers.item("Lamp", 1_000);
    let line = app.peers.cart_line(&ada, lamp, 1);

    let r = app.pay(&ada, &[line], 1_000, "wallet", "while-down").await;
    assert_eq!(r.headers()["retry-after"], "1");
    let (status, p) = problem(r).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(p["detail"].as_str().unwrap().contains("user"), "{p}");
    assert_eq!(app.balance(&ada).await, 5_000);
    assert_eq!(app.scalar("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM outbox").await, 0);
}
