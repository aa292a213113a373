//! `/api/v1/orders`: the caller's orders; someone else's is 404 for every verb.

use kommerce_contracts::saga::OrderCancelRequested;
use kommerce_kit::messaging::Event;
use kommerce_kit::testing::{fields, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn orders_are_listed_newest_first_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.customer(), app.customer());
    let (lamp, chair) = (Uuid::now_v7(), Uuid::now_v7());
    let (first, _) = app.order(&ada, "delivered", &[(lamp, 1_000, 1)]).await;
    let (second, _) = app
        .order(&ada, "created", &[(lamp, 1_000, 2), (chair, 4_000, 1)])
        .await;
    let (third, _) = app.order(&ada, "cancelled", &[(chair, 4_000, 1)]).await;
    app.order(&bob, "created", &[(lamp, 1_000, 1)]).await;

    let page = app.get_ok("/api/v1/orders?limit=2", &ada).await;
    let ids: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third.to_string(), second.to_string()]);
    assert_eq!(page["next_cursor"], second.to_string());
    let shown = &page["orders"][1];
    assert_eq!(shown["status"], "created");
    assert_eq!(shown["total_minor"], 6_000);
    assert_eq!(shown["lines"].as_array().unwrap().len(), 2);
    assert!(shown.get("user_id").is_none(), "{shown}");

    let rest = app
        .get_ok(&format!("/api/v1/orders?limit=2&cursor={second}"), &ada)
        .await;
    assert_eq!(rest["orders"].as_array().unwrap().len(), 1);
    assert_eq!(rest["orders"][0]["id"], first.to_string());
    assert_eq!(rest["next_cursor"], Value::Null);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=yesterday", "cursor"),
    ] {
        let (status, p) = problem(
            app.get(&format!("/api/v1/orders?{query}"), Some(&ada))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(fields(&p), [field], "{query}");
    }
    let (status, _) = problem(app.get("/api/v1/orders", None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn someone_elses_order_is_404_for_every_verb() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.customer(), app.customer());
    let lamp = Uuid::now_v7();
    let (order, payment) = app.order(&ada, "created", &[(lamp, 1_500, 2)]).await;

    let mine = app.get_ok(&format!("/api/v1/orders/{order}"), &ada).await;
    assert_eq!(mine["id"], order.to_string());
    assert_eq!(mine["payment_id"], payment.to_string());
    assert_eq!(mine["status"], "created");
    assert_eq!(mine["total_minor"], 3_000);
    assert_eq!(mine["address"]["city"], "London");
    assert_eq!(mine["cancelled_at"], Value::Null);
    assert_eq!(
        mine["lines"],
        json!([{"item_id": lamp, "name": "Thing", "unit_price_minor": 1_500, "qty": 2}])
    );

    for path in [
        format!("/api/v1/orders/{order}"),
        format!("/api/v1/orders/{order}/timeline"),
        format!("/api/v1/orders/{}", Uuid::now_v7()),
        "/api/v1/orders/not-an-id".to_owned(),
    ] {
        let (status, p) = problem(app.get(&path, Some(&bob)).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(p["type"], "https://kommerce.dev/problems/not-found");
    }
    let (status, _) = problem(
        app.post(&format!("/api/v1/orders/{order}/cancel"), &bob, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.order_status(order).await, "created", "untouched");
    assert!(app.emitted(OrderCancelRequested::TYPE).await.is_empty());
}

#[tokio::test]
async fn cancelling_asks_pay_for_a_refund_once_and_a_shipped_order_stays() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let (order, payment) = app
        .order(&ada, "created", &[(Uuid::now_v7(), 900, 1)])
        .await;
    let cancel = format!("/api/v1/orders/{order}/cancel");

    let r = app.post(&cancel, &ada, &json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "cancel_requested");
    assert_eq!(body["lines"].as_array().unwrap().len(), 1);
    assert_eq!(app.order_status(order).await, "cancel_requested");
    let events = app.emitted(OrderCancelRequested::TYPE).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, payment.to_string(), "keyed by the saga");
    let event: OrderCancelRequested = events[0].decode().unwrap();
    assert_eq!(
        event,
        OrderCancelRequested {
            order_id: order,
            payment_id: payment,
            user_id: ada.id,
        }
    );
    let step: (Uuid, Option<Uuid>, String) =
        sqlx::query_as("SELECT saga_id, order_id, step FROM saga_steps WHERE service = 'order'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(
        step,
        (payment, Some(order), "order.cancel-requested".to_owned())
    );

    // Asking again answers the same and asks pay for nothing more.
    let r = app.post(&cancel, &ada, &json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        r.json::<Value>().await.unwrap()["status"],
        "cancel_requested"
    );
    assert_eq!(app.emitted(OrderCancelRequested::TYPE).await.len(), 1);

    // Shipped is too late: 409, nothing emitted.
    let (shipped, _) = app
        .order(&ada, "shipped", &[(Uuid::now_v7(), 900, 1)])
        .await;
    let (status, p) = problem(
        app.post(
            &format!("/api/v1/orders/{shipped}/cancel"),
            &ada,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        p["type"],
        "https://kommerce.dev/problems/order-not-cancellable"
    );
    assert_eq!(app.order_status(shipped).await, "shipped");
    assert_eq!(app.emitted(OrderCancelRequested::TYPE).await.len(), 1);
}

#[tokio::test]
async fn only_an_admin_ships_and_a_shipped_order_cannot_be_cancelled() {
    let app = TestApp::spawn().await;
    let (ada, admin) = (app.customer(), app.admin());
    let (order, _) = app
        .order(&ada, "created", &[(Uuid::now_v7(), 900, 1)])
        .await;
    let ship = format!("/api/v1/orders/{order}/ship");

    let (status, _) = problem(app.post(&ship, &ada, &json!({})).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.order_status(order).await, "created");

    let r = app.post(&ship, &admin, &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": order, "status": "shipped"})
    );
    assert_eq!(app.order_status(order).await, "shipped");
    // Again: nothing changes.
    assert_eq!(
        app.post(&ship, &admin, &json!({})).await.status(),
        StatusCode::OK
    );
    let steps = app
        .scalar("SELECT count(*) FROM saga_steps WHERE step = 'order.shipped'")
        .await;
    assert_eq!(steps, 1);

    let (status, _) = problem(
        app.post(&format!("/api/v1/orders/{order}/cancel"), &ada, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (cancelled, _) = app
        .order(&ada, "cancelled", &[(Uuid::now_v7(), 900, 1)])
        .await;
    let (status, p) = problem(
        app.post(
            &format!("/api/v1/orders/{cancelled}/ship"),
            &admin,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        p["type"],
        "https://kommerce.dev/problems/order-not-shippable"
    );
    let (status, _) = problem(
        app.post(
            &format!("/api/v1/orders/{}/ship", Uuid::now_v7()),
            &admin,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Regression: shipping a delivered order answered `"status": "shipped"` while the order stayed
/// delivered.
#[tokio::test]
async fn shipping_a_delivered_order_answers_its_real_status() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let admin = app.admin();
    let (delivered, _) = app
        .order(&ada, "delivered", &[(Uuid::now_v7(), 900, 1)])
        .await;
    let r = app
        .post(
            &format!("/api/v1/orders/{delivered}/ship"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": delivered, "status": "delivered"})
    );
    assert_eq!(app.order_status(delivered).await, "delivered");
}

#[tokio::test]
async fn the_timeline_merges_the_steps_of_order_and_pay_in_time_order() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let (order, payment) = app
        .order(&ada, "created", &[(Uuid::now_v7(), 900, 1)])
        .await;
    sqlx::query(
        "INSERT INTO saga_steps (saga_id, order_id, service, step, outcome, at) \
         VALUES ($1, $2, 'order', 'order.created', 'order created', now() - interval '1 minute')",
    )
    .bind(payment)
    .bind(order)
    .execute(app.pool())
    .await
    .unwrap();
    app.pay.add_step(json!({
        "saga_id": payment, "order_id": null, "service": "pay", "step": "payment.completed",
        "outcome": "charged, waiting for the order", "detail": "wallet",
        "at": "2020-01-01T00:00:00Z",
    }));
    // An earlier step of another saga in this database stays out.
    sqlx::query(
        "INSERT INTO saga_steps (saga_id, service, step, outcome) \
         VALUES ($1, 'order', 'order.failed', 'insufficient_stock')",
    )
    .bind(Uuid::now_v7())
    .execute(app.pool())
    .await
    .unwrap();

    let timeline = app
        .get_ok(&format!("/api/v1/orders/{order}/timeline"), &ada)
        .await;
    assert_eq!(timeline["order_id"], order.to_string());
    assert_eq!(timeline["payment_id"], payment.to_string());
    let steps: Vec<(&str, &str)> = timeline["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["service"].as_str().unwrap(), s["step"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [("pay", "payment.completed"), ("order", "order.created")]
    );
}

#[tokio::test]
async fn an_order_read_with_an_unknown_stored_status_is_an_error_not_a_guess() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let (order, _) = app
        .order(&ada, "created", &[(Uuid::now_v7(), 900, 1)])
        .await;
    // The CHECK constraint keeps unknown statuses out; dropping it stands for a newer
    // version's status seen by this code.
    sqlx::query("ALTER TABLE orders DROP CONSTRAINT orders_status_check")
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE orders SET status = 'returned' WHERE id = $1")
        .bind(order)
        .execute(app.pool())
        .await
        .unwrap();
    let (status, p) = problem(
        app.send(
            Method::GET,
            &format!("/api/v1/orders/{order}"),
            Some(&ada),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(p["type"], "https://kommerce.dev/problems/internal");
}
