//! The saga's deadline across pay and order (ADR 0017): a payment's order held past the
//! deadline — by a gate in the order consumer, so the race is made every time — still ends in
//! exactly one order and no refund; the timeline shows the deadline.

use std::sync::Arc;

use kommerce_kit::messaging::Hooks;
use reqwest::StatusCode;

use crate::common::{Options, Shop, WAIT, eventually, scalar};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_held_past_its_payments_deadline_is_kept_and_nothing_is_refunded() {
    let mut shop = Shop::spawn_with(Options {
        deadline_secs: 1,
        ..Options::default()
    })
    .await;
    // Every reserved order waits at the gate until the test lets it through.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    shop.stop_order().await;
    shop.start_order_gated(Hooks::default(), Some(gate.clone()))
        .await;
    let item = shop.item(700, 3).await;
    let ada = shop.shopper(1_000).await;
    let line = shop.add_to_cart(&ada, item, 1).await;
    let (status, paid) = shop.pay(&ada, &[line], 700, "held").await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let id = paid["id"].as_str().unwrap().to_owned();

    // The deadline passes while the order is being made: pay asks, and does not refund.
    let (order_db, pay_db) = shop.pools();
    let deadline_steps = format!(
        "SELECT count(*) FROM saga_steps WHERE saga_id = '{id}' AND step = 'payment.deadline'"
    );
    eventually("pay published the deadline", WAIT, || async {
        scalar(pay_db, &deadline_steps).await == 1
    })
    .await;
    assert_eq!(shop.payment(&ada, &id).await["status"], "pending_order");

    // The order is made after all; then order reads the deadline and finds it.
    gate.add_permits(1);
    let settled = shop.settled(&ada, &id).await;
    assert_eq!(settled["status"], "completed", "{settled}");
    eventually("order answered the deadline", WAIT, || async {
        scalar(order_db, &deadline_steps).await == 1
    })
    .await;
    shop.outboxes_drained().await;
    eventually("pay applied order's answer", WAIT, || async {
        shop.committed("pay", "orders") == shop.published("orders")
    })
    .await;
    assert_eq!(shop.payment(&ada, &id).await["status"], "completed");
    assert_eq!(scalar(order_db, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(scalar(pay_db, "SELECT count(*) FROM refunds").await, 0);
    assert_eq!(shop.balance(&ada).await, 300);
    assert_eq!(shop.stock(item).await, 2);
    assert_eq!(
        scalar(pay_db, &deadline_steps).await,
        1,
        "the deadline is published once"
    );
    // The timeline tells it.
    let order = settled["order_id"].as_str().unwrap();
    let steps = shop.timeline(&ada, order).await;
    for expected in [("pay", "payment.deadline"), ("order", "payment.deadline")] {
        assert!(
            steps
                .iter()
                .any(|(s, t)| (s.as_str(), t.as_str()) == expected),
            "{expected:?} in {steps:?}"
        );
    }
}
