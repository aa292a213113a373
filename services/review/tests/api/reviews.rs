//! Reviews over HTTP with the real order, image and item services around them: verified
//! purchase, one review per item, author-only edits, summaries, listings, images, and the item
//! rating kept equal to the summary through `review.rating-changed` — also after a replay.

use crate::helpers::{Stack, eventually, fields, problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn only_a_buyer_reviews_and_only_once() {
    let s = Stack::spawn().await;
    let item = s.item("Teapot").await;
    let body = json!({"item_id": item, "rating": 5, "title": "Lovely", "body": "Pours well."});

    let stranger = s.user();
    let (status, _) = problem(
        s.api(
            Method::POST,
            "/api/v1/reviews",
            Some(&stranger),
            Some(&body),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "never bought it");
    let cancelled = s.user();
    s.order(&cancelled, item, "cancelled").await;
    let (status, _) = problem(
        s.api(
            Method::POST,
            "/api/v1/reviews",
            Some(&cancelled),
            Some(&body),
        )
        .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a cancelled order is no purchase"
    );
    let other_item = s.user();
    s.order(&other_item, Uuid::new_v4(), "delivered").await;
    let (status, _) = problem(
        s.api(
            Method::POST,
            "/api/v1/reviews",
            Some(&other_item),
            Some(&body),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bought something else");
    let r = s
        .api(Method::POST, "/api/v1/reviews", None, Some(&body))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        (s.reviews().await, s.outbox().await),
        (0, 0),
        "nothing stored"
    );

    let buyer = s.user();
    s.order(&buyer, item, "created").await;
    let r = s
        .api(Method::POST, "/api/v1/reviews", Some(&buyer), Some(&body))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let review: Value = r.json().await.unwrap();
    assert_eq!(review["rating"], 5);
    assert_eq!(review["user_id"], buyer.id.to_string());
    let (status, p) = problem(
        s.api(Method::POST, "/api/v1/reviews", Some(&buyer), Some(&body))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    assert_eq!((s.reviews().await, s.outbox().await), (1, 1));
    let shipped = s.user();
    s.order(&shipped, item, "shipped").await;
    s.review(&shipped, item, 3).await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_stores_nothing() {
    let s = Stack::spawn().await;
    let item = s.item("Kettle").await;
    let buyer = s.buyer(item).await;
    let someone = s.user();
    let theirs = s.upload(&someone).await;
    let cases = [
        (
            json!({"item_id": item, "rating": 0, "title": "t", "body": "b"}),
            "rating",
        ),
        (
            json!({"item_id": item, "rating": 6, "title": "t", "body": "b"}),
            "rating",
        ),
        (
            json!({"item_id": item, "rating": 4, "title": "t", "body": "   "}),
            "body",
        ),
        (
            json!({"item_id": item, "rating": 4, "title": "x".repeat(201), "body": "b"}),
            "title",
        ),
        (
            json!({"item_id": item, "rating": 4, "title": "t", "body": "x".repeat(5_001)}),
            "body",
        ),
        (
            json!({"item_id": item, "rating": 4, "title": "t", "body": "b", "image_ids": [theirs]}),
            "image_ids[0]",
        ),
        (
            json!({"item_id": item, "rating": 4, "title": "t", "body": "b", "image_ids": [Uuid::new_v4()]}),
            "image_ids[0]",
        ),
        (
            json!({"item_id": item, "rating": "five", "title": "t", "body": "b"}),
            "rating",
        ),
        (
            json!({"item_id": "nope", "rating": 4, "title": "t", "body": "b"}),
            "item_id",
        ),
    ];
    for (body, field) in cases {
        let (status, p) = problem(
            s.api(Method::POST, "/api/v1/reviews", Some(&buyer), Some(&body))
                .await,
        )
        .await;
        assert_eq!(
            (status, fields(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{body}"
        );
    }
    assert_eq!(
        (s.reviews().await, s.outbox().await),
        (0, 0),
        "nothing stored"
    );
    let attached = Stack::scalar(
        &s.image_db.pool,
        "SELECT count(*) FROM images WHERE attached_id IS NOT NULL",
    )
    .await;
    assert_eq!(attached, 0, "someone else's image stays theirs, unattached");

    // A partly good image list attaches nothing either.
    let mine = s.upload(&buyer).await;
    let body = json!({"item_id": item, "rating": 4, "title": "t", "body": "b", "image_ids": [mine, theirs]});
    let (status, p) = problem(
        s.api(Method::POST, "/api/v1/reviews", Some(&buyer), Some(&body))
            .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["image_ids[1]".to_owned()]
        )
    );
    let attached = Stack::scalar(
        &s.image_db.pool,
        "SELECT count(*) FROM images WHERE attached_id IS NOT NULL",
    )
    .await;
    assert_eq!(
        (attached, s.reviews().await),
        (0, 0),
        "the first image was detached again"
    );

    // PATCH validates the same way.
    let review = s.review(&buyer, item, 4).await;
    let path = format!("/api/v1/reviews/{}", review["id"].as_str().unwrap());
    let (status, p) = problem(
        s.api(
            Method::PATCH,
            &path,
            Some(&buyer),
            Some(&json!({"rating": 0, "body": ""})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["rating".to_owned(), "body".to_owned()]
        )
    );
    assert_eq!(s.get(&path).await["rating"], 4, "unchanged");
    // An empty PATCH changes nothing, and says so as every other PATCH does.
    let (status, p) = problem(
        s.api(Method::PATCH, &path, Some(&buyer), Some(&json!({})))
            .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["body".to_owned()])
    );
    assert_eq!(s.get(&path).await["rating"], 4, "unchanged");
    assert_eq!(s.outbox().await, 1);
}

#[tokio::test]
async fn only_the_author_edits_and_the_author_or_an_admin_deletes() {
    let s = Stack::spawn().await;
    let item = s.item("Cup").await;
    let alice = s.buyer(item).await;
    let bob = s.buyer(item).await;
    let review = s.review(&alice, item, 2).await;
    let path = format!("/api/v1/reviews/{}", review["id"].as_str().unwrap());

    let (status, _) = problem(
        s.api(
            Method::PATCH,
            &path,
            Some(&bob),
            Some(&json!({"rating": 1})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = problem(
        s.api(
            Method::PATCH,
            &path,
            Some(&s.admin),
            Some(&json!({"rating": 1})),
        )
        .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "admins delete, they do not put words in mouths"
    );
    let r = s
        .api(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(&json!({"rating": 4, "title": "Better after a week"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(
        (updated["rating"].as_i64(), updated["title"].as_str()),
        (Some(4), Some("Better after a week"))
    );
    assert_eq!(updated["body"], review["body"], "absent fields are kept");

    let (status, _) = problem(s.api(Method::DELETE, &path, Some(&bob), None).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.api(Method::DELETE, &path, Some(&s.admin), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let (status, _) = problem(s.api(Method::DELETE, &path, Some(&alice), None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let own = s.review(&bob, item, 5).await;
    let own = format!("/api/v1/reviews/{}", own["id"].as_str().unwrap());
    assert_eq!(
        s.api(Method::DELETE, &own, Some(&bob), None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.reviews().await, 0);
    let (status, _) = problem(
        s.api(
            Method::PATCH,
            &format!("/api/v1/reviews/{}", Uuid::new_v4()),
            Some(&bob),
            Some(&json!({"rating": 1})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_summary_follows_creates_updates_and_deletes_and_so_does_the_item() {
    let s = Stack::spawn().await;
    let item = s.item("Mug").await;
    let empty = s.summary(item).await;
    assert_eq!(empty["count"], 0);
    assert_eq!(empty["average"], 0.0);

    let mut reviews = Vec::new();
    let mut authors = Vec::new();
    for rating in [5, 4, 2] {
        let u = s.buyer(item).await;
        reviews.push(s.review(&u, item, rating).await);
        authors.push(u);
    }
    let sum = s.summary(item).await;
    assert_eq!(sum["count"], 3);
    assert!((sum["average"].as_f64().unwrap() - 11.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        sum["histogram"],
        json!({"1": 0, "2": 1, "3": 0, "4": 1, "5": 1})
    );
    s.item_matches_summary(item).await;

    let path = |i: usize| format!("/api/v1/reviews/{}", reviews[i]["id"].as_str().unwrap());
    let r = s
        .api(
            Method::PATCH,
            &path(2),
            Some(&authors[2]),
            Some(&json!({"rating": 5})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let sum = s.summary(item).await;
    assert!((sum["average"].as_f64().unwrap() - 14.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        sum["histogram"],
        json!({"1": 0, "2": 0, "3": 0, "4": 1, "5": 2})
    );
    s.item_matches_summary(item).await;

    assert_eq!(
        s.api(Method::DELETE, &path(1), Some(&authors[1]), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let sum = s.summary(item).await;
    assert_eq!(
        (sum["count"].as_i64(), sum["average"].as_f64()),
        (Some(2), Some(5.0))
    );
    assert_eq!(
        sum["histogram"],
        json!({"1": 0, "2": 0, "3": 0, "4": 0, "5": 2})
    );
    s.item_matches_summary(item).await;
    assert_eq!(
        s.outbox().await,
        5,
        "one event per create, update and delete"
    );

    // The catalogue sorts by the rating the item service now holds.
    let low = s.item("Saucer").await;
    let u = s.buyer(low).await;
    s.review(&u, low, 1).await;
    s.item_matches_summary(low).await;
    let listing: Value = s
        .send(
            Method::GET,
            &format!("{}/api/v1/items?sort=rating", s.item),
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Mug", "Saucer"], "{listing}");
}

#[tokio::test]
async fn the_item_rating_equals_the_summary_after_replaying_every_rating_event() {
    let s = Stack::spawn().await;
    let item = s.item("Plate").await;
    let mut authors = Vec::new();
    for rating in [3, 5, 1, 4] {
        let u = s.buyer(item).await;
        let r = s.review(&u, item, rating).await;
        authors.push((u, r));
    }
    let (u, r) = &authors[0];
    let path = format!("/api/v1/reviews/{}", r["id"].as_str().unwrap());
    assert_eq!(
        s.api(Method::PATCH, &path, Some(u), Some(&json!({"rating": 2})))
            .await
            .status(),
        StatusCode::OK
    );
    let (u, r) = &authors[1];
    let path = format!("/api/v1/reviews/{}", r["id"].as_str().unwrap());
    assert_eq!(
        s.api(Method::DELETE, &path, Some(u), None).await.status(),
        StatusCode::NO_CONTENT
    );
    s.item_matches_summary(item).await;
    let events = s.outbox().await;
    assert_eq!(events, 6);
    eventually("the item service applied every event", || async {
        Stack::scalar(&s.item_db.pool, "SELECT count(*) FROM inbox").await == events
    })
    .await;
    let seq = Stack::scalar(&s.item_db.pool, "SELECT max(rating_seq) FROM items").await;
    assert_eq!(seq, 6);

    // Replay: the item service forgets what it consumed and the relay sends the whole outbox
    // again, oldest first. Without the inbox to dedupe, only the sequence numbers protect the
    // rating from going back in time.
    sqlx::query("DELETE FROM inbox")
        .execute(&s.item_db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET sent_at = NULL")
        .execute(&s.review_db.pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('kommerce_outbox', '')")
        .execute(&s.review_db.pool)
        .await
        .unwrap();
    eventually("the replay was consumed", || async {
        Stack::scalar(&s.item_db.pool, "SELECT count(*) FROM inbox").await == events
    })
    .await;
    let sum = s.summary(item).await;
    assert_eq!(
        s.item_rating(item).await,
        (
            sum["average"].as_f64().unwrap(),
            sum["count"].as_i64().unwrap()
        ),
        "replayed events changed nothing"
    );
    assert_eq!(sum["count"], 3);
    assert!((sum["average"].as_f64().unwrap() - 7.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        Stack::scalar(&s.item_db.pool, "SELECT max(rating_seq) FROM items").await,
        6
    );

    // One more change after the replay still lands.
    let (u, r) = &authors[2];
    let path = format!("/api/v1/reviews/{}", r["id"].as_str().unwrap());
    assert_eq!(
        s.api(Method::PATCH, &path, Some(u), Some(&json!({"rating": 5})))
            .await
            .status(),
        StatusCode::OK
    );
    s.item_matches_summary(item).await;
    assert_eq!(s.item_rating(item).await.1, 3);
}

#[tokio::test]
async fn listings_sort_and_page_with_cursors_and_mine_shows_my_own() {
    let s = Stack::spawn().await;
    let item = s.item("Spoon").await;
    let other = s.item("Fork").await;
    let mut ids = Vec::new();
    let mut first = None;
    for rating in [3, 5, 1, 5, 2] {
        let u = s.buyer(item).await;
        ids.push((
            rating,
            s.review(&u, item, rating).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
        first.get_or_insert(u);
    }
    let me = first.unwrap();
    s.order(&me, other, "delivered").await;
    s.review(&me, other, 4).await;

    let walk = |sort: &'static str| {
        let s = &s;
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/api/v1/reviews?item_id={item}&sort={sort}&limit=2");
                if let Some(c) = &cursor {
                    path = format!("{path}&cursor={c}");
                }
                let page = s.get(&path).await;
                let items = page["items"].as_array().unwrap();
                assert!(items.len() <= 2);
                seen.extend(items.iter().map(|r| {
                    (
                        r["rating"].as_i64().unwrap(),
                        r["id"].as_str().unwrap().to_owned(),
                    )
                }));
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            seen
        }
    };
    let newest = walk("newest").await;
    let mut want: Vec<(i64, String)> = ids.iter().rev().cloned().collect();
    assert_eq!(newest, want);
    let by_rating = walk("rating_desc").await;
    want.sort_by_key(|r| std::cmp::Reverse(r.0)); // stable: newest first within a rating
    assert_eq!(by_rating, want);
    let ascending = walk("rating_asc").await;
    want.sort_by_key(|r| r.0);
    assert_eq!(ascending, want);

    let r = s
        .api(Method::GET, "/api/v1/reviews/mine", Some(&me), None)
        .await;
    let mine: Value = r.json().await.unwrap();
    let items: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(items, [other.to_string(), item.to_string()]);
    assert_eq!(
        s.api(Method::GET, "/api/v1/reviews/mine", None, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let first_page = s
        .get(&format!(
            "/api/v1/reviews?item_id={item}&sort=newest&limit=2"
        ))
        .await;
    let newest_cursor = first_page["next_cursor"].as_str().unwrap();
    for (query, field) in [
        (format!("item_id={item}&sort=oldest"), "sort"),
        (
            format!("item_id={item}&sort=rating_desc&cursor={newest_cursor}"),
            "cursor",
        ),
        (format!("item_id={item}&cursor=garbage"), "cursor"),
        (format!("item_id={item}&limit=0"), "limit"),
        ("sort=newest".to_owned(), "item_id"),
        (format!("item_id={item}&colour=red"), "colour"),
    ] {
        let (status, p) = problem(
            s.api(Method::GET, &format!("/api/v1/reviews?{query}"), None, None)
                .await,
        )
        .await;
        assert_eq!(
            (status, fields(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{query}"
        );
    }
}

#[tokio::test]
#[allow(clippy::many_single_char_names)] // a, b, c: three images
async fn a_review_attaches_its_authors_images_and_takes_them_when_it_goes() {
    let s = Stack::spawn().await;
    let item = s.item("Bowl").await;
    let buyer = s.buyer(item).await;
    let (a, b, c) = (
        s.upload(&buyer).await,
        s.upload(&buyer).await,
        s.upload(&buyer).await,
    );
    let r = s
        .api(Method::POST, "/api/v1/reviews", Some(&buyer), Some(&json!({"item_id": item, "rating": 5, "title": "See", "body": "Photos attached.", "image_ids": [a, b]})))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let review: Value = r.json().await.unwrap();
    let id: Uuid = review["id"].as_str().unwrap().parse().unwrap();
    let attached = |image: Uuid| {
        let s = &s;
        async move {
            sqlx::query_as::<_, (Option<String>, Option<Uuid>)>(
                "SELECT attached_kind, attached_id FROM images WHERE id = $1",
            )
            .bind(image)
            .fetch_optional(&s.image_db.pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(attached(a).await, Some((Some("review".into()), Some(id))));
    assert_eq!(attached(b).await, Some((Some("review".into()), Some(id))));

    // Swapping b for c attaches c and deletes b.
    let path = format!("/api/v1/reviews/{id}");
    let r = s
        .api(
            Method::PATCH,
            &path,
            Some(&buyer),
            Some(&json!({"image_ids": [a, c]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(attached(b).await, None);
    assert_eq!(attached(c).await, Some((Some("review".into()), Some(id))));

    // Another buyer cannot reuse them.
    let other = s.buyer(item).await;
    let (status, p) = problem(
        s.api(Method::POST, "/api/v1/reviews", Some(&other), Some(&json!({"item_id": item, "rating": 1, "title": "", "body": "Mine now", "image_ids": [a]})))
            .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["image_ids[0]".to_owned()]
        )
    );

    assert_eq!(
        s.api(Method::DELETE, &path, Some(&buyer), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        (attached(a).await, attached(c).await),
        (None, None),
        "the review's images went with it"
    );
}

#[tokio::test]
async fn an_unreachable_order_service_is_a_503_that_changes_nothing() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Stack::spawn_with_order(Some(format!("http://127.0.0.1:{port}"))).await;
    let item = s.item("Jug").await;
    let buyer = s.buyer(item).await;
    let r = s
        .api(
            Method::POST,
            "/api/v1/reviews",
            Some(&buyer),
            Some(&json!({"item_id": item, "rating": 4, "title": "", "body": "ok"})),
        )
        .await;
    assert_eq!(
        r.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some("1".into())
    );
    let (status, _) = problem(r).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!((s.reviews().await, s.outbox().await), (0, 0));
}
