//! Categories, items, listing and the product-page cache over HTTP.

use crate::helpers::{TestApp, fields, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn categories_form_a_tree_that_admins_shape() {
    let app = TestApp::spawn().await;
    let kitchen = app.category("Kitchen", None).await;
    let tea = app.category("Tea", Some(&kitchen)).await;
    let pots = app.category("Pots", Some(&tea)).await;
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree[0]["name"], "Kitchen");
    assert_eq!(tree[0]["children"][0]["children"][0]["id"], pots.as_str());

    // Sibling names are unique, case-insensitively; a cycle is refused.
    let (status, _) = problem(
        app.admin_post(
            "/api/v1/categories",
            &json!({"name": "tea", "parent_id": kitchen}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/categories/{kitchen}"),
            Some(&app.admin),
            Some(&json!({"parent_id": pots})),
        )
        .await;
    let (status, p) = problem(r).await;
    assert_eq!(
        (status, fields(&p)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["parent_id".to_owned()]
        )
    );
    let (status, p) = problem(
        app.admin_post(
            "/api/v1/categories",
            &json!({"name": "X", "parent_id": uuid::Uuid::new_v4()}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["parent_id".to_owned()]
        )
    );

    // Rename, move to the root.
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/categories/{pots}"),
            Some(&app.admin),
            Some(&json!({"name": "Teapots", "parent_id": null})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree.as_array().unwrap().len(), 2);
    assert_eq!(tree[1]["name"], "Teapots");

    // Delete only when empty.
    app.item(&tea, "Sencha", 1200, 5).await;
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v1/categories/{kitchen}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(
        problem(r).await.0,
        StatusCode::CONFLICT,
        "has a sub-category"
    );
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v1/categories/{tea}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(problem(r).await.0, StatusCode::CONFLICT, "has an item");
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v1/categories/{pots}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.scalar("SELECT count(*) FROM categories").await, 2);
}

#[tokio::test]
async fn only_admins_write_and_bad_items_store_nothing() {
    let app = TestApp::spawn().await;
    let cat = app.category("Tea", None).await;
    let body = json!({"name": "Sencha", "price_minor": 1200, "category_id": cat, "stock": 5});
    let r = app
        .send(
            Method::POST,
            "/api/v1/items",
            Some(&app.customer),
            Some(&body),
        )
        .await;
    assert_eq!(problem(r).await.0, StatusCode::FORBIDDEN);
    let r = app
        .send(Method::POST, "/api/v1/items", None, Some(&body))
        .await;
    assert_eq!(problem(r).await.0, StatusCode::UNAUTHORIZED);
    let r = app
        .send(
            Method::POST,
            "/api/v1/categories",
            Some(&app.customer),
            Some(&json!({"name": "X"})),
        )
        .await;
    assert_eq!(problem(r).await.0, StatusCode::FORBIDDEN);

    for (bad, field) in [
        (
            json!({"name": "A", "price_minor": -1, "category_id": cat}),
            "price_minor",
        ),
        (
            json!({"name": "A", "price_minor": 1, "category_id": uuid::Uuid::new_v4()}),
            "category_id",
        ),
        (
            json!({"name": "", "price_minor": 1, "category_id": cat}),
            "name",
        ),
        (
            json!({"name": "A", "price_minor": 1, "category_id": cat, "stock": -3}),
            "stock",
        ),
        (
            json!({"name": "A", "price_minor": 1, "category_id": cat, "status": "gone"}),
            "status",
        ),
        (
            json!({"name": "A", "price_minor": 1, "category_id": cat, "colour": "red"}),
            "colour",
        ),
    ] {
        let (status, p) = problem(app.admin_post("/api/v1/items", &bad).await).await;
        assert_eq!(
            (status, fields(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{bad}"
        );
    }
    assert_eq!(app.scalar("SELECT count(*) FROM items").await, 0);

    let id = app.item(&cat, "Sencha", 1200, 5).await;
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/items/{id}"),
            Some(&app.admin),
            Some(&json!({"price_minor": -5})),
        )
        .await;
    assert_eq!(problem(r).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/items/{id}"),
            Some(&app.admin),
            Some(&json!({"stock": 100})),
        )
        .await;
    assert_eq!(
        fields(&problem(r).await.1),
        ["stock"],
        "stock changes only through the stock endpoint"
    );
    assert_eq!(app.available(&id).await, 5);
}

#[tokio::test]
async fn listing_filters_sorts_and_pages_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let kitchen = app.category("Kitchen", None).await;
    let tea = app.category("Tea", Some(&kitchen)).await;
    let garden = app.category("Garden", None).await;
    let pot = app.item(&tea, "Cast iron Teapot", 4500, 3).await;
    let kettle = app.item(&kitchen, "Whistling kettle", 3000, 0).await;
    let _hose = app.item(&garden, "Garden hose", 2500, 7).await;
    for i in 0..7 {
        app.item(&tea, &format!("Sencha {i}"), 1000 + i * 100, 10)
            .await;
    }
    let hidden = app.item_with(json!({"name": "Secret tea", "price_minor": 1, "category_id": tea, "status": "hidden", "stock": 1})).await;
    let gone = app.item(&tea, "Discontinued tea", 999, 1).await;
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v1/items/{gone}"),
            Some(&app.admin),
            None
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );

    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let app = &app;
    let list = |q: String| async move {
        app.get(&format!("/api/v1/items?{q}"))
            .await
            .json::<Value>()
            .await
            .unwrap()
    };

    // Category includes sub-categories; hidden and deleted items never list.
    let in_kitchen = ids(&list(format!("category={kitchen}&limit=100")).await);
    assert_eq!(in_kitchen.len(), 9);
    assert!(in_kitchen.contains(&pot) && in_kitchen.contains(&kettle));
    assert!(!in_kitchen.contains(&hidden) && !in_kitchen.contains(&gone));
    // Partial words match (prefix), and so does a typo (trigram).
    assert_eq!(
        ids(&list("q=teap".into()).await),
        std::slice::from_ref(&pot)
    );
    assert_eq!(
        ids(&list("q=whistl%20ket".into()).await),
        std::slice::from_ref(&kettle)
    );
    assert!(
        ids(&list("q=Teapott".into()).await).contains(&pot),
        "a typo still finds it"
    );
    // Price range and in-stock.
    let mid = list("min_price=2500&max_price=3000&sort=price_asc".into()).await;
    assert_eq!(
        mid["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["price_minor"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2500, 3000]
    );
    assert!(!ids(&list("in_stock=true&limit=100".into()).await).contains(&kettle));

    // Walk every page of price_desc with a small page size.
    let mut seen = Vec::new();
    let mut prices = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("sort=price_desc&limit=3&cursor={c}"),
            None => "sort=price_desc&limit=3".into(),
        };
        let page = list(q).await;
        for i in page["items"].as_array().unwrap() {
            seen.push(i["id"].as_str().unwrap().to_owned());
            prices.push(i["price_minor"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10, "every listed item exactly once");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    assert!(prices.windows(2).all(|w| w[0] >= w[1]), "{prices:?}");

    // Bad parameters are named.
    for (q, field) in [
        ("cursor=garbage", "cursor"),
        ("sort=cheap", "sort"),
        ("limit=0", "limit"),
        ("min_price=-1", "min_price"),
        ("category=x", "category"),
    ] {
        let (status, p) = problem(app.get(&format!("/api/v1/items?{q}")).await).await;
        assert_eq!(
            (status, fields(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{q}"
        );
    }
    // A cursor of one sort order is refused by another.
    let page = list("sort=price_asc&limit=2".into()).await;
    let c = page["next_cursor"].as_str().unwrap();
    let (status, p) = problem(
        app.get(&format!("/api/v1/items?sort=newest&cursor={c}"))
            .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["cursor".to_owned()])
    );

    // A deleted item still resolves by id (old orders show it).
    let v: Value = app
        .get(&format!("/api/v1/items/{gone}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(v["deleted_at"].is_string());
    // Internal batch lookup.
    let v: Value = app
        .get(&format!("/internal/v1/items?ids={pot},{gone}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (status, p) = problem(app.get("/internal/v1/items?ids=nope").await).await;
    assert_eq!(
        (status, fields(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["ids".to_owned()])
    );
}

#[tokio::test]
async fn product_pages_are_cached_invalidated_and_survive_a_broken_cache() {
    let app = TestApp::spawn().await;
    let cat = app.category("Tea", None).await;
    let id = app.item(&cat, "Sencha", 1200, 5).await;
    let key = app.key(&format!("item:cache:{id}"));
    let mut redis = redis::Client::open(kommerce_kit::testing::redis_url())
        .unwrap()
        .get_connection()
        .unwrap();
    let cached = |redis: &mut redis::Connection| -> Option<String> {
        redis::cmd("GET").arg(&key).query(redis).unwrap()
    };

    assert!(cached(&mut redis).is_none());
    let first: Value = app
        .get(&format!("/api/v1/items/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["name"], "Sencha");
    assert!(
        cached(&mut redis).unwrap().contains("Sencha"),
        "filled on a miss"
    );

    // Every change invalidates: an update, a stock change.
    app.send(
        Method::PATCH,
        &format!("/api/v1/items/{id}"),
        Some(&app.admin),
        Some(&json!({"name": "Gyokuro"})),
    )
    .await;
    assert!(cached(&mut redis).is_none());
    let v: Value = app
        .get(&format!("/api/v1/items/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "Gyokuro");
    let r = app
        .admin_post(
            &format!("/api/v1/items/{id}/stock"),
            &json!({"delta": 3, "reason": "delivery"}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["stock"], 8);
    assert!(cached(&mut redis).is_none());
    assert_eq!(
        app.get(&format!("/api/v1/items/{id}"))
            .await
            .json::<Value>()
            .await
            .unwrap()["stock"],
        8
    );

    // A cache that errors (here: the key holds the wrong type) degrades to the database.
    let _: () = redis::cmd("DEL").arg(&key).query(&mut redis).unwrap();
    let _: i64 = redis::cmd("LPUSH")
        .arg(&key)
        .arg("not a page")
        .query(&mut redis)
        .unwrap();
    let r = app.get(&format!("/api/v1/items/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Gyokuro");
}

#[tokio::test]
async fn nul_in_a_query_or_a_body_is_a_422_naming_the_field_and_stores_nothing() {
    let app = TestApp::spawn().await;
    // PostgreSQL refuses NUL in text: it must never reach a query (that was a 500).
    for q in ["q=a%00b", "q=%00", "q=tea&sort=%00"] {
        let (status, p) = problem(app.get(&format!("/api/v1/items?{q}")).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        let field = if q.contains("sort") { "sort" } else { "q" };
        assert_eq!(fields(&p), [field], "{q}");
    }
    let r = app
        .admin_post("/api/v1/categories", &json!({"name": "Tea\u{0}pots"}))
        .await;
    let (status, p) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&p), ["name"]);
    assert_eq!(
        app.scalar("SELECT count(*) FROM categories").await,
        0,
        "nothing stored"
    );
}
