//! The saga consumer: order's events, published into the orders topic, complete a payment, or
//! refund it (at most once) when no order could be made or the order was cancelled.

use kommerce_contracts::money::Money;
use kommerce_contracts::saga::{
    OrderCancelRequested, OrderCreated, OrderFailed, PaymentCancelled, PaymentRefunded,
};
use kommerce_kit::messaging::Event;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, eventually};

fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap()
}

#[tokio::test]
async fn an_order_that_could_not_be_made_refunds_the_wallet_once() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(10_000).await;
    let lamp = app.peers.item("Lamp", 1_250);
    let line = app.peers.cart_line(&ada, lamp, 2);
    let id = app.paid(&ada, &[line], 2_500, "wallet").await;
    assert_eq!(app.balance(&ada).await, 7_500);

    let failed = OrderFailed {
        payment_id: id,
        user_id: ada.id,
        reason: "insufficient_stock".into(),
        detail: "not enough stock for every line".into(),
    };
    let cause = app.publish(&failed).await;
    let payment = app.settled(&ada, id, "cancelled").await;
    let why = "insufficient_stock: not enough stock for every line";
    assert_eq!(payment["reason"], why);
    assert_eq!(payment["refunded_minor"], 2_500);
    assert_eq!(payment["order_id"], Value::Null);

    // The money is back, with its ledger entry.
    assert_eq!(
        app.wallet(&ada).await,
        (
            10_000,
            vec![
                (2_500, "refund".into(), Some(id)),
                (-2_500, "charge".into(), Some(id)),
                (10_000, "top_up".into(), None),
            ]
        )
    );
    let refund: (i64, String) =
        sqlx::query_as("SELECT amount_minor, reason FROM refunds WHERE payment_id = $1")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(refund, (2_500, why.to_owned()));
    let cancelled = app.emitted(PaymentCancelled::TYPE).await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        cancelled[0].decode::<PaymentCancelled>().unwrap(),
        PaymentCancelled {
            payment_id: id,
            user_id: ada.id,
            reason: why.into(),
            refunded_minor: Money::minor(2_500),
        }
    );
    assert_eq!(
        trace_id(&cancelled[0].traceparent),
        trace_id(&cause.traceparent)
    );

    // order.failed again (a new message): no second refund, no second event.
    app.publish(&failed).await;
    eventually("the repeat is consumed", || async {
        app.consumed().await == 2
    })
    .await;
    assert_eq!(app.balance(&ada).await, 10_000);
    assert_eq!(app.scalar("SELECT count(*) FROM refunds").await, 1);
    assert_eq!(app.emitted(PaymentCancelled::TYPE).await.len(), 1);
}

#[tokio::test]
async fn a_cancelled_order_is_refunded_once_and_the_timeline_shows_every_step() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(10_000).await;
    let lamp = app.peers.item("Lamp", 1_250);
    let line = app.peers.cart_line(&ada, lamp, 2);
    let id = app.paid(&ada, &[line], 2_500, "wallet").await;
    let order = Uuid::now_v7();

    app.publish(&OrderCreated {
        order_id: order,
        payment_id: id,
        user_id: ada.id,
        total_minor: Money::minor(2_500),
    })
    .await;
    let payment = app.settled(&ada, id, "completed").await;
    assert_eq!(payment["order_id"], order.to_string());
    assert_eq!(payment["refunded_minor"], Value::Null);
    assert_eq!(app.balance(&ada).await, 7_500, "an order stands: no refund");
    assert!(app.emitted(PaymentRefunded::TYPE).await.is_empty());

    let cancel = OrderCancelRequested {
        order_id: order,
        payment_id: id,
        user_id: ada.id,
    };
    app.publish(&cancel).await;
    let payment = app.settled(&ada, id, "refunded").await;
    assert_eq!(payment["refunded_minor"], 2_500);
    assert_eq!(payment["reason"], "order cancelled by the customer");
    assert_eq!(app.balance(&ada).await, 10_000);
    let refunded = app.emitted(PaymentRefunded::TYPE).await;
    assert_eq!(refunded.len(), 1);
    assert_eq!(
        refunded[0].decode::<PaymentRefunded>().unwrap(),
        PaymentRefunded {
            payment_id: id,
            order_id: order,
            user_id: ada.id,
            refunded_minor: Money::minor(2_500),
        }
    );

    app.publish(&cancel).await;
    eventually("the repeat is consumed", || async {
        app.consumed().await == 3
    })
    .await;
    assert_eq!(app.balance(&ada).await, 10_000);
    assert_eq!(app.scalar("SELECT count(*) FROM refunds").await, 1);
    assert_eq!(app.emitted(PaymentRefunded::TYPE).await.len(), 1);

    // pay's half of the timeline, as the order service reads it.
    let r = app.get(&format!("/internal/v1/saga/{id}"), None).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let steps: Vec<Value> = r.json().await.unwrap();
    let names: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s["service"].as_str().unwrap(), s["step"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("pay", "payment.completed"),
            ("pay", "order.created"),
            ("pay", "order.cancel-requested")
        ]
    );
    // By the order's id too.
    let by_order: Vec<Value> = app
        .get(&format!("/internal/v1/saga/{order}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_order.len(), 3);
}

#[tokio::test]
async fn a_card_payment_is_refunded_to_the_card_not_the_wallet() {
    let app = TestApp::spawn().await;
    let ada = app.shopper(0).await;
    let lamp = app.peers.item("Lamp", 900);
    let line = app.peers.cart_line(&ada, lamp, 1);
    let id = app.paid(&ada, &[line], 900, "card").await;
    app.publish(&OrderFailed {
        payment_id: id,
        user_id: ada.id,
        reason: "not_on_sale".into(),
        detail: "an item is no longer on sale".into(),
    })
    .await;
    let payment = app.settled(&ada, id, "cancelled").await;
    assert_eq!(payment["refunded_minor"], 900);
    assert_eq!(
        app.wallet(&ada).await,
        (0, vec![]),
        "the wallet was never involved"
    );
    let steps: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM saga_steps WHERE saga_id = $1 AND step = 'order.failed'",
    )
    .bind(id)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(steps, ["cancelled: 900 back to the card"]);
}
