//! `/internal/v1`: what pay (the cart of a checkout) and review (verified purchases) ask.

use kommerce_kit::testing::{fields, problem};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_purchase_is_an_order_line_that_was_not_cancelled() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.customer(), app.customer());
    let [bought, shipped, delivered, cancelled, cancelling, never] =
        std::array::from_fn(|_| Uuid::now_v7());
    app.order(&ada, "created", &[(bought, 100, 1)]).await;
    app.order(&ada, "shipped", &[(shipped, 100, 1)]).await;
    app.order(&ada, "delivered", &[(delivered, 100, 1)]).await;
    app.order(&ada, "cancelled", &[(cancelled, 100, 1)]).await;
    app.order(&ada, "cancel_requested", &[(cancelling, 100, 1)])
        .await;

    let purchased = |user: Uuid, item: Uuid| {
        let app = &app;
        async move {
            let r = app
                .get(
                    &format!("/internal/v1/purchases?user_id={user}&item_id={item}"),
                    None,
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()["purchased"]
                .as_bool()
                .unwrap()
        }
    };
    for (item, want) in [
        (bought, true),
        (shipped, true),
        (delivered, true),
        (cancelled, false),
        (cancelling, false),
        (never, false),
    ] {
        assert_eq!(purchased(ada.id, item).await, want, "{item}");
    }
    assert!(
        !purchased(bob.id, bought).await,
        "ada's purchase, not bob's"
    );

    for (query, field) in [
        (format!("item_id={bought}"), "user_id"),
        (format!("user_id=ada&item_id={bought}"), "user_id"),
        (format!("user_id={}", ada.id), "item_id"),
    ] {
        let (status, p) = problem(
            app.get(&format!("/internal/v1/purchases?{query}"), None)
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(fields(&p), [field], "{query}");
    }
}

#[tokio::test]
async fn pay_reads_a_users_cart_lines() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.customer(), app.customer());
    let lamp = app.item.on_sale("Lamp", 1_000, 5);
    let line = app.add_to_cart(&ada, lamp, 2).await;

    let r = app
        .get(&format!("/internal/v1/carts/{}", ada.id), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cart: Value = r.json().await.unwrap();
    assert_eq!(cart["user_id"], ada.id.to_string());
    assert_eq!(cart["lines"].as_array().unwrap().len(), 1);
    assert_eq!(cart["lines"][0]["id"], line["id"]);
    assert_eq!(cart["lines"][0]["item_id"], lamp.to_string());
    assert_eq!(cart["lines"][0]["qty"], 2);

    let empty: Value = app
        .get(&format!("/internal/v1/carts/{}", bob.id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["lines"].as_array().unwrap().len(), 0);
    let (status, _) = problem(app.get("/internal/v1/carts/ada", None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
