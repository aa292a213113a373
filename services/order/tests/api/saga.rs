//! The saga consumer: pay's events, published into the payments topic, make orders (when the
//! item service reserves the stock), `order.failed` (when it refuses), and cancellations.

use kommerce_contracts::item::{RefusalReason, ReservationLine, ReservationRequest};
use kommerce_contracts::money::Money;
use kommerce_contracts::saga::{OrderCreated, OrderFailed, PaymentCancelled, PaymentRefunded};
use kommerce_kit::messaging::Event;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, eventually, payment_completed};

fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap()
}

#[tokio::test]
async fn a_completed_payment_becomes_an_order_once_the_stock_is_reserved() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = app.item.on_sale("Lamp", 1_250, 10);
    let chair = app.item.on_sale("Chair", 4_000, 10);
    app.add_to_cart(&ada, lamp, 2).await;
    app.add_to_cart(&ada, chair, 1).await;

    let paid = payment_completed(&ada, &[(lamp, 1_250, 2)]);
    let cause = app.publish(&paid).await;
    eventually("the order is made", || async {
        app.scalar("SELECT count(*) FROM orders").await == 1
    })
    .await;

    // The stock was reserved under the payment's id, line by line.
    assert_eq!(
        app.item.reservations(),
        [ReservationRequest {
            reservation_id: paid.payment_id,
            lines: vec![ReservationLine {
                item_id: lamp,
                qty: 2
            }],
        }]
    );
    let (order, user, status, total, address): (Uuid, Uuid, String, i64, Value) = sqlx::query_as(
        "SELECT id, user_id, status, total_minor, address FROM orders WHERE payment_id = $1",
    )
    .bind(paid.payment_id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!((user, status.as_str(), total), (ada.id, "created", 2_500));
    assert_eq!(address, paid.address, "the address as it was at payment");
    let lines: Vec<(Uuid, String, i64, i32)> = sqlx::query_as(
        "SELECT item_id, name, unit_price_minor, qty FROM order_lines WHERE order_id = $1",
    )
    .bind(order)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(lines, [(lamp, paid.lines[0].name.clone(), 1_250, 2)]);
    // The bought line left the cart; the other stayed.
    assert_eq!(app.stored_cart(&ada).await, [(chair, 1)]);

    let created = app.emitted(OrderCreated::TYPE).await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].decode::<OrderCreated>().unwrap(),
        OrderCreated {
            order_id: order,
            payment_id: paid.payment_id,
            user_id: ada.id,
            total_minor: Money::minor(2_500),
        }
    );
    assert_eq!(created[0].key, paid.payment_id.to_string());
    assert_eq!(
        trace_id(&created[0].traceparent),
        trace_id(&cause.traceparent),
        "the order continues the payment's trace"
    );
    let steps: Vec<(String, Option<Uuid>)> =
        sqlx::query_as("SELECT step, order_id FROM saga_steps WHERE saga_id = $1")
            .bind(paid.payment_id)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(steps, [("order.created".to_owned(), Some(order))]);

    // The customer sees it.
    let shown = app.get_ok(&format!("/api/v1/orders/{order}"), &ada).await;
    assert_eq!(shown["status"], "created");
    assert_eq!(shown["lines"][0]["qty"], 2);

    // The same payment again (a new message: pay re-sent it): no second order, no second
    // reservation, no second event.
    app.publish(&paid).await;
    eventually("the repeat is consumed", || async {
        app.consumed().await == 2
    })
    .await;
    assert_eq!(app.scalar("SELECT count(*) FROM orders").await, 1);
    assert_eq!(app.item.reservations().len(), 1);
    assert_eq!(app.emitted(OrderCreated::TYPE).await.len(), 1);
}

#[tokio::test]
async fn an_item_service_outage_delays_the_order_but_does_not_lose_it() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = app.item.on_sale("Lamp", 500, 10);
    app.item.fail_next(2);
    let paid = payment_completed(&ada, &[(lamp, 500, 1)]);
    app.publish(&paid).await;
    eventually("the order is made after the outage", || async {
        app.scalar("SELECT count(*) FROM orders").await == 1
    })
    .await;
    let reservations = app.item.reservations();
    assert_eq!(
        reservations.len(),
        3,
        "two refused by the outage, then granted"
    );
    assert!(
        reservations
            .iter()
            .all(|r| r.reservation_id == paid.payment_id),
        "every attempt under the payment's id"
    );
    assert_eq!(app.emitted(OrderCreated::TYPE).await.len(), 1);
    assert!(app.emitted(OrderFailed::TYPE).await.is_empty());
}

#[tokio::test]
async fn a_refused_reservation_makes_no_order_and_tells_pay_why() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = app.item.on_sale("Lamp", 1_000, 1);
    app.add_to_cart(&ada, lamp, 2).await;
    app.item.refuse(RefusalReason::InsufficientStock);

    let short = payment_completed(&ada, &[(lamp, 1_000, 2)]);
    let cause = app.publish(&short).await;
    eventually("order.failed is emitted", || async {
        !app.emitted(OrderFailed::TYPE).await.is_empty()
    })
    .await;
    let failed = app.emitted(OrderFailed::TYPE).await;
    assert_eq!(
        failed[0].decode::<OrderFailed>().unwrap(),
        OrderFailed {
            payment_id: short.payment_id,
            user_id: ada.id,
            reason: "insufficient_stock".into(),
            detail: "not enough stock for every line".into(),
        }
    );
    assert_eq!(failed[0].key, short.payment_id.to_string());
    assert_eq!(
        trace_id(&failed[0].traceparent),
        trace_id(&cause.traceparent)
    );
    assert_eq!(app.scalar("SELECT count(*) FROM orders").await, 0);
    assert!(app.emitted(OrderCreated::TYPE).await.is_empty());
    assert_eq!(
        app.stored_cart(&ada).await,
        [(lamp, 2)],
        "nothing was bought: the cart is as it was"
    );
    let step: (String, String, Option<String>) =
        sqlx::query_as("SELECT step, outcome, detail FROM saga_steps WHERE saga_id = $1")
            .bind(short.payment_id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        step,
        (
            "order.failed".into(),
            "insufficient_stock".into(),
            Some("not enough stock for every line".into())
        )
    );

    // Another refusal reason is passed on as it is.
    app.item.refuse(RefusalReason::NotOnSale);
    let gone = payment_completed(&ada, &[(lamp, 1_000, 1)]);
    app.publish(&gone).await;
    eventually("the second order.failed", || async {
        app.emitted(OrderFailed::TYPE).await.len() == 2
    })
    .await;
    let second: OrderFailed = app.emitted(OrderFailed::TYPE).await[1].decode().unwrap();
    assert_eq!(second.payment_id, gone.payment_id);
    assert_eq!(
        (second.reason.as_str(), second.detail.as_str()),
        ("not_on_sale", "an item is no longer on sale")
    );

    // pay's answer, payment.cancelled, closes the saga: nothing to do here.
    app.publish(&PaymentCancelled {
        payment_id: short.payment_id,
        user_id: ada.id,
        reason: "insufficient_stock: not enough stock for every line".into(),
        refunded_minor: Money::minor(2_000),
    })
    .await;
    eventually("payment.cancelled is consumed", || async {
        app.consumed().await == 3
    })
    .await;
    assert_eq!(app.scalar("SELECT count(*) FROM orders").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM outbox").await, 2);
}

#[tokio::test]
async fn a_refund_cancels_the_order_and_gives_its_stock_back() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = Uuid::now_v7();
    let (order, payment) = app.order(&ada, "created", &[(lamp, 700, 3)]).await;
    let purchase_check = format!("/internal/v1/purchases?user_id={}&item_id={lamp}", ada.id);
    let purchased = || async {
        app.get(&purchase_check, None)
            .await
            .json::<Value>()
            .await
            .unwrap()["purchased"]
            .clone()
    };
    assert_eq!(purchased().await, true);

    let r = app
        .post(&format!("/api/v1/orders/{order}/cancel"), &ada, &json!({}))
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    assert_eq!(purchased().await, false, "a cancel request is no purchase");

    app.publish(&PaymentRefunded {
        payment_id: payment,
        order_id: order,
        user_id: ada.id,
        refunded_minor: Money::minor(2_100),
    })
    .await;
    eventually("the order is cancelled", || async {
        app.order_status(order).await == "cancelled"
    })
    .await;
    assert_eq!(
        app.item.releases(),
        [payment],
        "the reservation is released"
    );
    let shown = app.get_ok(&format!("/api/v1/orders/{order}"), &ada).await;
    assert_eq!(shown["status"], "cancelled");
    assert!(
        shown["cancelled_at"].as_str().unwrap().ends_with('Z'),
        "{shown}"
    );
    let steps: Vec<String> =
        sqlx::query_scalar("SELECT step FROM saga_steps WHERE saga_id = $1 ORDER BY at, id")
            .bind(payment)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(steps, ["order.cancel-requested", "payment.refunded"]);
}

/// The deadline decided before the payment's `payment.completed` was ever applied (it was
/// dead-lettered, say): `order.failed` with reason `deadline`, once; the `payment.completed`
/// replayed later reserves nothing and makes no order.
#[tokio::test]
async fn a_payment_expired_at_its_deadline_never_gets_an_order() {
    use kommerce_contracts::saga::{DEADLINE, PaymentDeadline};
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = app.item.on_sale("Lamp", 1_250, 10);
    let paid = payment_completed(&ada, &[(lamp, 1_250, 1)]);
    let deadline = PaymentDeadline {
        payment_id: paid.payment_id,
        user_id: ada.id,
    };
    app.publish(&deadline).await;
    eventually("order.failed for the deadline", || async {
        app.emitted(OrderFailed::TYPE).await.len() == 1
    })
    .await;
    let failed: OrderFailed = app.emitted(OrderFailed::TYPE).await[0].decode().unwrap();
    assert_eq!(
        (failed.payment_id, failed.reason.as_str()),
        (paid.payment_id, DEADLINE)
    );

    // The late payment.completed, then the deadline again (a redelivery): nothing more.
    let consumed = app.consumed().await;
    app.publish(&paid).await;
    app.publish(&deadline).await;
    eventually("both consumed", || async {
        app.consumed().await == consumed + 2
    })
    .await;
    assert_eq!(app.scalar("SELECT count(*) FROM orders").await, 0);
    assert!(app.item.reservations().is_empty(), "nothing reserved");
    assert_eq!(app.emitted(OrderCreated::TYPE).await.len(), 0);
    assert_eq!(app.emitted(OrderFailed::TYPE).await.len(), 1);
}

/// The deadline of a payment whose order exists: `order.created` again (pay completes, or
/// finds it completed), never `order.failed`.
#[tokio::test]
async fn the_deadline_of_a_payment_with_its_order_repeats_the_order() {
    use kommerce_contracts::saga::PaymentDeadline;
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = app.item.on_sale("Lamp", 1_250, 10);
    let paid = payment_completed(&ada, &[(lamp, 1_250, 1)]);
    app.publish(&paid).await;
    eventually("the order is made", || async {
        app.emitted(OrderCreated::TYPE).await.len() == 1
    })
    .await;
    app.publish(&PaymentDeadline {
        payment_id: paid.payment_id,
        user_id: ada.id,
    })
    .await;
    eventually("order.created again", || async {
        app.emitted(OrderCreated::TYPE).await.len() == 2
    })
    .await;
    let created = app.emitted(OrderCreated::TYPE).await;
    assert_eq!(
        created[0].decode::<OrderCreated>().unwrap(),
        created[1].decode::<OrderCreated>().unwrap()
    );
    assert_eq!(app.scalar("SELECT count(*) FROM orders").await, 1);
    assert_eq!(app.emitted(OrderFailed::TYPE).await.len(), 0);
}
