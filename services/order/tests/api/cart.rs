//! `/api/v1/cart`: the caller's own cart, checked against the item service.

use kommerce_kit::testing::{fields, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn adding_stores_a_line_and_adding_again_adds_to_it() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = app.item.on_sale("Lamp", 1_250, 7);

    let r = app
        .post(
            "/api/v1/cart/items",
            &ada,
            &json!({"item_id": lamp, "qty": 2}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let line: Value = r.json().await.unwrap();
    assert_eq!(line["item_id"], lamp.to_string());
    assert_eq!(line["qty"], 2);
    assert!(line["added_at"].as_str().unwrap().ends_with('Z'), "{line}");

    let r = app
        .post(
            "/api/v1/cart/items",
            &ada,
            &json!({"item_id": lamp, "qty": 3}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the existing line grows");
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["id"], line["id"], "still one line");
    assert_eq!(again["qty"], 5);
    assert_eq!(app.stored_cart(&ada).await, [(lamp, 5)]);

    let cart = app.get_ok("/api/v1/cart", &ada).await;
    assert_eq!(cart["subtotal_minor"], 5 * 1_250);
    let shown = &cart["lines"][0];
    assert_eq!(shown["id"], line["id"]);
    assert_eq!(shown["name"], "Lamp");
    assert_eq!(shown["unit_price_minor"], 1_250);
    assert_eq!(shown["on_sale"], true);
    assert_eq!(shown["available"], 7);
}

#[tokio::test]
async fn bad_quantities_and_ids_are_422_naming_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = app.item.on_sale("Lamp", 1_000, 5);
    let cases = [
        (json!({"item_id": lamp, "qty": 0}), "qty"),
        (json!({"item_id": lamp, "qty": -1}), "qty"),
        (json!({"item_id": lamp, "qty": 100}), "qty"),
        (json!({"item_id": lamp, "qty": i64::MAX}), "qty"),
        (json!({"item_id": lamp, "qty": "two"}), "qty"),
        (json!({"item_id": lamp}), "qty"),
        (json!({"item_id": "lamp", "qty": 1}), "item_id"),
        (json!({"qty": 1}), "item_id"),
        (
            json!({"item_id": lamp, "qty": 1, "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, p) = problem(app.post("/api/v1/cart/items", &ada, &body).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(fields(&p), [field], "{body}: {p}");
    }
    assert!(app.stored_cart(&ada).await.is_empty(), "nothing stored");

    // A line may hold at most 99 in total: a merge past it is refused and changes nothing.
    app.add_to_cart(&ada, lamp, 90).await;
    let (status, p) = problem(
        app.post(
            "/api/v1/cart/items",
            &ada,
            &json!({"item_id": lamp, "qty": 10}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["qty"]);
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already holds 90"),
        "{p}"
    );
    assert_eq!(app.stored_cart(&ada).await, [(lamp, 90)]);
}

#[tokio::test]
async fn only_an_item_on_sale_can_be_added() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let sold_out = app.item.on_sale("Sold out", 500, 0);
    app.item.set_status(sold_out, "sold_out");
    let hidden = app.item.on_sale("Hidden", 500, 3);
    app.item.set_status(hidden, "hidden");
    let deleted = app.item.on_sale("Deleted", 500, 3);
    app.item.delete(deleted);
    for (item, message) in [
        (Uuid::now_v7(), "no such item"),
        (deleted, "no such item"),
        (sold_out, "is not on sale"),
        (hidden, "is not on sale"),
    ] {
        let (status, p) = problem(
            app.post(
                "/api/v1/cart/items",
                &ada,
                &json!({"item_id": item, "qty": 1}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(fields(&p), ["item_id"]);
        assert_eq!(p["errors"][0]["message"], message);
    }
    assert!(app.stored_cart(&ada).await.is_empty());
}

#[tokio::test]
async fn a_line_whose_item_left_the_sale_stays_but_is_not_in_the_subtotal() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let kept = app.item.on_sale("Kept", 300, 9);
    let sold_out = app.item.on_sale("Sold out", 1_000, 1);
    let deleted = app.item.on_sale("Deleted", 2_000, 1);
    app.add_to_cart(&ada, kept, 2).await;
    app.add_to_cart(&ada, sold_out, 1).await;
    app.add_to_cart(&ada, deleted, 1).await;
    app.item.set_status(sold_out, "sold_out");
    app.item.delete(deleted);

    let cart = app.get_ok("/api/v1/cart", &ada).await;
    assert_eq!(
        cart["subtotal_minor"], 600,
        "only the line still on sale counts"
    );
    let lines = cart["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "nothing disappears from the cart: {cart}");
    let on_sale: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["on_sale"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        on_sale,
        [("Kept", true), ("Sold out", false), ("Deleted", false)]
    );
    assert_eq!(
        lines[1]["unit_price_minor"], 1_000,
        "the price is still shown"
    );

    // Paying for it is pay's business; here it cannot be added to again.
    let (status, p) = problem(
        app.post(
            "/api/v1/cart/items",
            &ada,
            &json!({"item_id": sold_out, "qty": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["item_id"]);
    assert_eq!(app.stored_cart(&ada).await[1], (sold_out, 1));
}

#[tokio::test]
async fn setting_a_quantity_validates_it_and_removing_a_line_deletes_it() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let lamp = app.item.on_sale("Lamp", 1_000, 5);
    let chair = app.item.on_sale("Chair", 4_000, 5);
    app.add_to_cart(&ada, lamp, 1).await;
    app.add_to_cart(&ada, chair, 1).await;
    let path = format!("/api/v1/cart/items/{lamp}");

    let r = app
        .send(Method::PATCH, &path, Some(&ada), Some(&json!({"qty": 7})))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["qty"], 7);
    for body in [json!({"qty": 0}), json!({"qty": 100}), json!({})] {
        let (status, p) = problem(
            app.send(Method::PATCH, &path, Some(&ada), Some(&body))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(fields(&p), ["qty"], "{body}");
    }
    assert_eq!(app.stored_cart(&ada).await, [(lamp, 7), (chair, 1)]);

    // No line for the item (or not an id at all): 404, nothing created.
    for missing in [Uuid::now_v7().to_string(), "lamp".to_owned()] {
        let (status, _) = problem(
            app.send(
                Method::PATCH,
                &format!("/api/v1/cart/items/{missing}"),
                Some(&ada),
                Some(&json!({"qty": 1})),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    let r = app.send(Method::DELETE, &path, Some(&ada), None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.stored_cart(&ada).await, [(chair, 1)]);
    let (status, _) = problem(app.send(Method::DELETE, &path, Some(&ada), None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already gone");
}

#[tokio::test]
async fn a_cart_is_its_owners_only() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.customer(), app.customer());
    let lamp = app.item.on_sale("Lamp", 1_000, 5);
    app.add_to_cart(&ada, lamp, 3).await;

    let (status, _) = problem(app.get("/api/v1/cart", None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = problem(
        app.send(
            Method::POST,
            "/api/v1/cart/items",
            None,
            Some(&json!({"item_id": lamp, "qty": 1})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let theirs = app.get_ok("/api/v1/cart", &bob).await;
    assert_eq!(theirs["lines"], json!([]));
    assert_eq!(theirs["subtotal_minor"], 0);
    let path = format!("/api/v1/cart/items/{lamp}");
    let (status, _) = problem(
        app.send(Method::PATCH, &path, Some(&bob), Some(&json!({"qty": 1})))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = problem(app.send(Method::DELETE, &path, Some(&bob), None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.stored_cart(&ada).await, [(lamp, 3)], "untouched");
}

#[tokio::test]
async fn a_cart_holds_at_most_fifty_lines() {
    let app = TestApp::spawn().await;
    let ada = app.customer();
    let first = app.item.on_sale("First", 100, 5);
    app.add_to_cart(&ada, first, 1).await;
    sqlx::query(
        "INSERT INTO cart_lines (id, user_id, item_id, qty) \
         SELECT gen_random_uuid(), $1, gen_random_uuid(), 1 FROM generate_series(1, 49)",
    )
    .bind(ada.id)
    .execute(app.pool())
    .await
    .unwrap();

    let another = app.item.on_sale("Another", 100, 5);
    let (status, p) = problem(
        app.post(
            "/api/v1/cart/items",
            &ada,
            &json!({"item_id": another, "qty": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(p["type"], "https://kommerce.dev/problems/cart-full");
    assert_eq!(app.stored_cart(&ada).await.len(), 50);
    // A line already there can still grow.
    let grown = app.add_to_cart(&ada, first, 1).await;
    assert_eq!(grown["qty"], 2);
}

#[tokio::test]
async fn with_the_item_service_down_the_cart_answers_503_and_changes_nothing() {
    // Bound and never listening: every connection to it is refused.
    let down = kommerce_kit::testing::reserve_port();
    let app = TestApp::spawn_with(|s| {
        s.peers.item = format!("http://127.0.0.1:{}", down.port());
    })
    .await;
    let ada = app.customer();
    let lamp = Uuid::now_v7();

    let r = app
        .post(
            "/api/v1/cart/items",
            &ada,
            &json!({"item_id": lamp, "qty": 1}),
        )
        .await;
    assert_eq!(r.headers()["retry-after"], "1");
    let (status, p) = problem(r).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(p["type"], "https://kommerce.dev/problems/unavailable");
    assert!(app.stored_cart(&ada).await.is_empty(), "nothing stored");

    // An empty cart needs no item service; one with lines does.
    assert_eq!(app.get_ok("/api/v1/cart", &ada).await["lines"], json!([]));
    sqlx::query("INSERT INTO carts (user_id) VALUES ($1)")
        .bind(ada.id)
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO cart_lines (id, user_id, item_id, qty) VALUES ($1, $2, $3, 1)")
        .bind(Uuid::now_v7())
        .bind(ada.id)
        .bind(lamp)
        .execute(app.pool())
        .await
        .unwrap();
    let (status, _) = problem(app.get("/api/v1/cart", Some(&ada)).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Changing or removing a line does not ask the item service.
    let path = format!("/api/v1/cart/items/{lamp}");
    let r = app
        .send(Method::PATCH, &path, Some(&ada), Some(&json!({"qty": 4})))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.stored_cart(&ada).await, [(lamp, 4)]);
}
