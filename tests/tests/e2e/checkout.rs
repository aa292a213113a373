//! The checkout saga across user, item, order and pay, on the real engines: money, orders and
//! stock are never lost or duplicated — on the happy path, when stock runs out, on cancel, on
//! redelivery of every event, and across a consumer crash.

use std::time::{Duration, Instant};

use crate::common::{Options, Shop, WAIT, assert_the_books_balance, eventually, scalar};
use kommerce_kit::messaging::{Failpoint, Hooks};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn a_paid_cart_becomes_an_order_and_everything_adds_up() {
    let shop = Shop::spawn().await;
    let item = shop.item(1_250, 10).await;
    let other = shop.item(400, 5).await;
    let ada = shop.shopper(10_000).await;
    let line = shop.add_to_cart(&ada, item, 2).await;
    let kept = shop.add_to_cart(&ada, other, 1).await;
    // Adding again adds to the line.
    assert_eq!(shop.add_to_cart(&ada, item, 1).await, line);
    let (status, cart) = shop.get("/api/v1/cart", &ada.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cart["subtotal_minor"], 3 * 1_250 + 400);
    assert_eq!(cart["lines"][0]["unit_price_minor"], 1_250);
    assert!(
        cart["lines"][0]["added_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // A wrong amount names the right one and charges nothing.
    let (status, problem) = shop.pay(&ada, &[line], 2_500, "k-wrong").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "amount_minor");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("3750")
    );
    assert_eq!(shop.balance(&ada).await, 10_000);

    let (status, paid) = shop.pay(&ada, &[line], 3_750, "k-1").await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["status"], "pending_order");
    let id = paid["id"].as_str().unwrap().to_owned();
    // The same key and body: the first response again, nothing charged twice.
    let (status, again) = shop.pay(&ada, &[line], 3_750, "k-1").await;
    assert_eq!((status, &again), (StatusCode::CREATED, &paid));
    // The same key with another body: refused.
    let (status, problem) = shop.pay(&ada, &[line, kept], 4_150, "k-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");

    let settled = shop.settled(&ada, &id).await;
    assert_eq!(settled["status"], "completed", "{settled}");
    let order_id = settled["order_id"].as_str().unwrap().to_owned();
    let (status, order) = shop
        .get(&format!("/api/v1/orders/{order_id}"), &ada.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["status"], "created");
    assert_eq!(order["payment_id"], id.as_str());
    assert_eq!(order["total_minor"], 3_750);
    assert_eq!(order["lines"][0]["qty"], 3);
    assert_eq!(order["lines"][0]["unit_price_minor"], 1_250);
    assert_eq!(order["address"]["id"], ada.address_id.to_string());
    assert_eq!(shop.balance(&ada).await, 10_000 - 3_750);
    assert_eq!(shop.stock(item).await, 7);
    assert_eq!(shop.stock(other).await, 5);
    // The bought line left the cart; the other stayed.
    let (_, cart) = shop.get("/api/v1/cart", &ada.token).await;
    let lines: Vec<&str> = cart["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(lines, [kept.to_string()]);
    let (_, mine) = shop.get("/api/v1/orders", &ada.token).await;
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1);

    // The timeline shows the saga in both services, in order.
    let steps = shop.timeline(&ada, &order_id).await;
    let names: Vec<(&str, &str)> = steps
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("pay", "payment.completed"),
            ("order", "order.created"),
            ("pay", "order.created")
        ]
    );
}

#[tokio::test]
async fn stock_gone_between_cart_and_order_refunds_and_makes_no_order() {
    let shop = Shop::spawn().await;
    let item = shop.item(500, 1).await;
    let bob = shop.shopper(5_000).await;
    let line = shop.add_to_cart(&bob, item, 2).await;
    let (status, paid) = shop.pay(&bob, &[line], 1_000, "only-one-left").await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let id = paid["id"].as_str().unwrap().to_owned();
    let settled = shop.settled(&bob, &id).await;
    assert_eq!(settled["status"], "cancelled", "{settled}");
    assert!(
        settled["reason"]
            .as_str()
            .unwrap()
            .starts_with("insufficient_stock")
    );
    assert_eq!(settled["refunded_minor"], 1_000);
    assert!(settled["order_id"].is_null());
    assert_eq!(shop.balance(&bob).await, 5_000);
    assert_eq!(shop.stock(item).await, 1, "stock untouched");
    let (order_db, pay_db) = shop.pools();
    assert_eq!(scalar(order_db, "SELECT count(*) FROM orders").await, 0);
    assert_eq!(scalar(pay_db, "SELECT count(*) FROM refunds").await, 1);
    // The line is still in the cart: nothing was bought.
    let (_, cart) = shop.get("/api/v1/cart", &bob.token).await;
    assert_eq!(cart["lines"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn cancel_refunds_restores_stock_and_a_second_cancel_changes_nothing() {
    let shop = Shop::spawn().await;
    let item = shop.item(2_000, 4).await;
    let cy = shop.shopper(9_000).await;
    let line = shop.add_to_cart(&cy, item, 3).await;
    let (_, paid) = shop.pay(&cy, &[line], 6_000, "c-1").await;
    let id = paid["id"].as_str().unwrap().to_owned();
    let order_id = shop.settled(&cy, &id).await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(shop.stock(item).await, 1);
    assert_eq!(shop.balance(&cy).await, 3_000);

    let cancel = format!("/api/v1/orders/{order_id}/cancel");
    let (status, order) = shop.post(&cancel, &cy.token, &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{order}");
    assert_eq!(order["status"], "cancel_requested");
    eventually("the order is cancelled", WAIT, || async {
        shop.get(&format!("/api/v1/orders/{order_id}"), &cy.token)
            .await
            .1["status"]
            == "cancelled"
    })
    .await;
    assert_eq!(shop.payment(&cy, &id).await["status"], "refunded");
    assert_eq!(shop.balance(&cy).await, 9_000);
    assert_eq!(shop.stock(item).await, 4);

    let (status, order) = shop.post(&cancel, &cy.token, &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(order["status"], "cancelled");
    let (order_db, pay_db) = shop.pools();
    // Let any stray event arrive before counting.
    shop.outboxes_drained().await;
    assert_eq!(
        scalar(
            order_db,
            "SELECT count(*) FROM outbox WHERE event_type = 'order.cancel-requested'"
        )
        .await,
        1
    );
    assert_eq!(scalar(pay_db, "SELECT count(*) FROM refunds").await, 1);
    assert_eq!(shop.balance(&cy).await, 9_000);
    assert_eq!(shop.stock(item).await, 4);

    // A shipped order can no longer be cancelled.
    let line = shop.add_to_cart(&cy, item, 1).await;
    let (_, paid) = shop.pay(&cy, &[line], 2_000, "c-2").await;
    let id = paid["id"].as_str().unwrap().to_owned();
    let shipped = shop.settled(&cy, &id).await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = shop
        .post(
            &format!("/api/v1/orders/{shipped}/ship"),
            &shop.admin,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = shop
        .post(
            &format!("/api/v1/orders/{shipped}/cancel"),
            &cy.token,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
}

#[tokio::test]
async fn replaying_every_event_changes_nothing() {
    let mut shop = Shop::spawn().await;
    let item = shop.item(300, 2).await;
    let people = shop.shoppers(3, 1_000).await;
    let mut ids = Vec::new();
    for (i, p) in people.iter().enumerate() {
        let line = shop.add_to_cart(p, item, 1).await;
        let (_, paid) = shop.pay(p, &[line], 300, &format!("r-{i}")).await;
        ids.push(paid["id"].as_str().unwrap().to_owned());
    }
    let mut orders = Vec::new();
    for (p, id) in people.iter().zip(&ids) {
        let settled = shop.settled(p, id).await;
        if let Some(o) = settled["order_id"].as_str() {
            orders.push((p.clone(), o.to_owned()));
        }
    }
    assert_eq!(orders.len(), 2);
    let (p, o) = &orders[0];
    shop.post(&format!("/api/v1/orders/{o}/cancel"), &p.token, &json!({}))
        .await;
    eventually("cancelled", WAIT, || async {
        shop.get(&format!("/api/v1/orders/{o}"), &p.token).await.1["status"] == "cancelled"
    })
    .await;

    let (order_db, pay_db) = (shop.order_db.pool.clone(), shop.pay_db.pool.clone());
    let (order_db, pay_db) = (&order_db, &pay_db);
    let snapshot = async |shop: &Shop| {
        let (order_db, pay_db) = shop.pools();
        (
            scalar(order_db, "SELECT count(*) FROM orders").await,
            scalar(
                order_db,
                "SELECT count(*) FROM orders WHERE status = 'cancelled'",
            )
            .await,
            scalar(pay_db, "SELECT count(*) FROM refunds").await,
            scalar(
                pay_db,
                "SELECT COALESCE(sum(balance_minor), 0)::bigint FROM wallets",
            )
            .await,
            scalar(pay_db, "SELECT count(*) FROM wallet_entries").await,
            shop.stock(item).await,
            scalar(order_db, "SELECT count(*) FROM outbox").await,
            scalar(pay_db, "SELECT count(*) FROM outbox").await,
        )
    };
    shop.outboxes_drained().await;
    // Events in each topic: the rows of its owner's outbox, each sent exactly once.
    let (in_orders, in_payments) = (
        scalar(order_db, "SELECT count(*) FROM outbox").await,
        scalar(pay_db, "SELECT count(*) FROM outbox").await,
    );
    assert_eq!(shop.published("orders"), in_orders);
    assert_eq!(shop.published("payments"), in_payments);
    eventually("every event consumed", WAIT, || async {
        shop.committed("order", "payments") == in_payments
            && shop.committed("pay", "orders") == in_orders
    })
    .await;
    let before = snapshot(&shop).await;

    shop.stop_order().await;
    shop.stop_pay().await;
    shop.rewind("order", "payments");
    shop.rewind("pay", "orders");
    assert_eq!(shop.committed("order", "payments"), 0);
    shop.start_order(Hooks::default()).await;
    shop.start_pay().await;
    eventually("every event consumed again", WAIT, || async {
        shop.committed("order", "payments") == in_payments
            && shop.committed("pay", "orders") == in_orders
    })
    .await;
    assert_eq!(snapshot(&shop).await, before);
    assert_eq!(
        before.5, 1,
        "one unit sold and kept, one returned by the cancel"
    );
}

#[tokio::test]
async fn an_order_consumer_killed_between_commit_and_offset_makes_one_order() {
    let mut shop = Shop::spawn_with(Options {
        partitions: 1,
        consumers: 1,
        ..Options::default()
    })
    .await;
    // Restart the order service with a consumer that dies right after its first commit.
    shop.stop_order().await;
    let crashed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = crashed.clone();
    shop.start_order(Hooks::new(move |p| {
        p == Failpoint::ConsumerAfterCommit && !seen.swap(true, std::sync::atomic::Ordering::SeqCst)
    }))
    .await;
    let item = shop.item(700, 5).await;
    let people = shop.shoppers(2, 1_000).await;
    let line = shop.add_to_cart(&people[0], item, 1).await;
    let (_, first) = shop.pay(&people[0], &[line], 700, "crash-1").await;
    let order_db = shop.order_db.pool.clone();
    let order_db = &order_db;
    // The failpoint fires right after the commit: wait for both.
    eventually(
        "the first order committed, then the crash",
        WAIT,
        || async {
            crashed.load(std::sync::atomic::Ordering::SeqCst)
                && scalar(order_db, "SELECT count(*) FROM orders").await == 1
        },
    )
    .await;
    // The offset was never committed; a restarted service gets the message again.
    assert_eq!(shop.committed("order", "payments"), 0);
    shop.stop_order().await;
    shop.start_order(Hooks::default()).await;
    let line = shop.add_to_cart(&people[1], item, 1).await;
    let (_, second) = shop.pay(&people[1], &[line], 700, "crash-2").await;
    // One partition: once the second payment has its order, the first was seen again.
    shop.settled(&people[1], second["id"].as_str().unwrap())
        .await;
    assert_eq!(shop.committed("order", "payments"), 2);
    assert_eq!(scalar(order_db, "SELECT count(*) FROM orders").await, 2);
    let first = shop
        .settled(&people[0], first["id"].as_str().unwrap())
        .await;
    assert_eq!(first["status"], "completed");
    assert_eq!(shop.stock(item).await, 3);
}

#[tokio::test]
async fn nobody_reads_pays_for_or_cancels_what_is_not_theirs() {
    let shop = Shop::spawn().await;
    let item = shop.item(100, 10).await;
    let people = shop.shoppers(2, 1_000).await;
    let (owner, other) = (&people[0], &people[1]);
    let line = shop.add_to_cart(owner, item, 1).await;
    // Another user's cart line and another user's address are not found.
    let (status, _) = shop.pay(other, &[line], 100, "steal").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mine = shop.add_to_cart(other, item, 1).await;
    let body = json!({"cart_line_ids": [mine], "address_id": owner.address_id,
                      "amount_minor": 100, "method": "wallet"});
    let r = shop
        .send(
            Method::POST,
            "/api/v1/payments",
            Some(&other.token),
            Some(&body),
            Some("addr"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Someone else's cart line cannot be changed or removed.
    let path = format!("/api/v1/cart/items/{item}");
    let r = shop
        .send(Method::DELETE, &path, Some(&other.token), None, None)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "the other user's own line"
    );
    let r = shop
        .send(Method::DELETE, &path, Some(&other.token), None, None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, cart) = shop.get("/api/v1/cart", &owner.token).await;
    assert_eq!(
        cart["lines"].as_array().unwrap().len(),
        1,
        "the owner's line is untouched"
    );

    let (_, paid) = shop.pay(owner, &[line], 100, "mine").await;
    let id = paid["id"].as_str().unwrap().to_owned();
    let order = shop.settled(owner, &id).await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/api/v1/payments/{id}"),
        format!("/api/v1/orders/{order}"),
        format!("/api/v1/orders/{order}/timeline"),
    ] {
        assert_eq!(
            shop.get(&path, &other.token).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let (status, _) = shop
        .post(
            &format!("/api/v1/orders/{order}/cancel"),
            &other.token,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        shop.get(&format!("/api/v1/orders/{order}"), &owner.token)
            .await
            .1["status"],
        "created"
    );
    assert!(
        shop.get("/api/v1/payments", &other.token).await.1["payments"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Without a token: 401.
    let r = shop
        .send(Method::GET, "/api/v1/cart", None, None, None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_cart_and_payment_requests_change_nothing() {
    let shop = Shop::spawn().await;
    let item = shop.item(100, 10).await;
    let eve = shop.shopper(50).await;
    for (body, field) in [
        (json!({"item_id": item, "qty": 0}), "qty"),
        (json!({"item_id": item, "qty": 100}), "qty"),
        (json!({"item_id": Uuid::now_v7(), "qty": 1}), "item_id"),
    ] {
        let (status, problem) = shop.post("/api/v1/cart/items", &eve.token, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let line = shop.add_to_cart(&eve, item, 99).await;
    let (status, problem) = shop
        .post(
            "/api/v1/cart/items",
            &eve.token,
            &json!({"item_id": item, "qty": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let r = shop
        .send(
            Method::PATCH,
            &format!("/api/v1/cart/items/{item}"),
            Some(&eve.token),
            Some(&json!({"qty": 1})),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, problem) = shop
        .send(
            Method::PATCH,
            &format!("/api/v1/cart/items/{item}"),
            Some(&eve.token),
            Some(&json!({"qty": 0})),
            None,
        )
        .await
        .json::<Value>()
        .await
        .map(|v| (v["status"].clone(), v))
        .unwrap();
    assert_eq!(status, 422, "{problem}");

    // No key: 400. Not enough money: 402. Bad fields: 422 naming them.
    let body = json!({"cart_line_ids": [line], "address_id": eve.address_id,
                      "amount_minor": 100, "method": "wallet"});
    let r = shop
        .send(
            Method::POST,
            "/api/v1/payments",
            Some(&eve.token),
            Some(&body),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, problem) = shop.pay(&eve, &[line], 100, "too-poor").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{problem}");
    let r = shop
        .send(
            Method::POST,
            "/api/v1/payments",
            Some(&eve.token),
            Some(&json!({"cart_line_ids": [], "address_id": eve.address_id, "amount_minor": -1, "method": "cash"})),
            Some("bad"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["cart_line_ids", "amount_minor", "method"]);
    let (status, _) = shop
        .post(
            "/api/v1/wallet/top-up",
            &eve.token,
            &json!({"amount_minor": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, pay_db) = shop.pools();
    assert_eq!(scalar(pay_db, "SELECT count(*) FROM payments").await, 0);
    assert_eq!(shop.balance(&eve).await, 50);
    assert_eq!(shop.stock(item).await, 10);
}

#[tokio::test]
async fn a_declined_card_charges_nothing() {
    let declining = Shop::spawn_with(Options {
        card_failure_rate: 1.0,
        ..Options::default()
    })
    .await;
    let item = declining.item(900, 3).await;
    let dee = declining.shopper(0).await;
    let line = declining.add_to_cart(&dee, item, 1).await;
    let (status, problem) = declining.pay_by(&dee, &[line], 900, "card-1", "card").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{problem}");
    let (_, pay_db) = declining.pools();
    assert_eq!(scalar(pay_db, "SELECT count(*) FROM payments").await, 0);
    assert_eq!(declining.stock(item).await, 3);
}

#[tokio::test]
async fn a_card_order_is_refunded_to_the_card_not_the_wallet() {
    let shop = Shop::spawn().await;
    let item = shop.item(900, 3).await;
    let dee = shop.shopper(0).await;
    let line = shop.add_to_cart(&dee, item, 1).await;
    let (status, paid) = shop.pay_by(&dee, &[line], 900, "card-2", "card").await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    let id = paid["id"].as_str().unwrap().to_owned();
    let settled = shop.settled(&dee, &id).await;
    assert_eq!(
        (settled["status"].as_str(), settled["method"].as_str()),
        (Some("completed"), Some("card"))
    );
    let order = settled["order_id"].as_str().unwrap().to_owned();
    shop.post(
        &format!("/api/v1/orders/{order}/cancel"),
        &dee.token,
        &json!({}),
    )
    .await;
    eventually("refunded", WAIT, || async {
        shop.payment(&dee, &id).await["status"] == "refunded"
    })
    .await;
    let (_, pay_db) = shop.pools();
    assert_eq!(scalar(pay_db, "SELECT count(*) FROM refunds").await, 1);
    // The card, not the wallet, got the money back: the wallet never moved.
    assert_eq!(shop.balance(&dee).await, 0);
    assert_eq!(
        scalar(
            pay_db,
            "SELECT count(*) FROM wallet_entries WHERE kind <> 'top_up'"
        )
        .await,
        0
    );
}

/// 1,000 shoppers, one unit each, 100 in stock: exactly 100 orders, 900 refunds, and the money
/// adds up. Prints checkouts/s and payment → order latency percentiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_checkouts_sell_exactly_the_stock() {
    const BUYERS: usize = 1_000;
    let shop = Shop::spawn().await;
    let item = shop.item(1_000, 100).await;
    let people = shop.shoppers(BUYERS, 1_000).await;
    let lines =
        futures::future::join_all(people.iter().map(|p| shop.add_to_cart(p, item, 1))).await;

    let started = Instant::now();
    let paid = futures::future::join_all(
        people
            .iter()
            .zip(&lines)
            .map(|(p, l)| shop.pay(p, std::slice::from_ref(l), 1_000, "load")),
    )
    .await;
    let accepted = started.elapsed();
    for (status, body) in &paid {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    let (order_db, pay_db) = shop.pools();
    eventually(
        "every payment settled",
        Duration::from_secs(120),
        || async {
            scalar(
                pay_db,
                "SELECT count(*) FROM payments WHERE status = 'pending_order'",
            )
            .await
                == 0
        },
    )
    .await;
    let settled = started.elapsed();
    eprintln!(
        "checkout load: {BUYERS} payments accepted in {:.2} s ({:.0}/s, {} answers of 503 retried with the same key); all settled after {:.2} s ({:.0} checkouts/s end to end)",
        accepted.as_secs_f64(),
        BUYERS as f64 / accepted.as_secs_f64(),
        shop.retries.load(std::sync::atomic::Ordering::Relaxed),
        settled.as_secs_f64(),
        BUYERS as f64 / settled.as_secs_f64(),
    );
    assert!(
        settled < Duration::from_secs(30) + accepted,
        "settled {settled:?}"
    );

    assert_the_books_balance(order_db, pay_db, i64::try_from(BUYERS).unwrap(), 100, 1_000).await;
    assert_eq!(shop.stock(item).await, 0);

    // Payment → order latency, from the two services' own clocks (one machine).
    let made: Vec<(Uuid, f64)> =
        sqlx::query_as("SELECT payment_id, extract(epoch FROM created_at)::float8 FROM orders")
            .fetch_all(order_db)
            .await
            .unwrap();
    let paid_at: std::collections::HashMap<Uuid, f64> = sqlx::query_as::<_, (Uuid, f64)>(
        "SELECT id, extract(epoch FROM created_at)::float8 FROM payments",
    )
    .fetch_all(pay_db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let mut latency: Vec<f64> = made.iter().map(|(p, at)| at - paid_at[p]).collect();
    latency.sort_by(f64::total_cmp);
    let pct = |q: f64| latency[((latency.len() as f64 - 1.0) * q).round() as usize] * 1_000.0;
    eprintln!(
        "payment → order latency over {} orders: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latency.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
