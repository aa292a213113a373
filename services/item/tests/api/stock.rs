//! Stock over HTTP against real PostgreSQL and Redis: the reservation API, admin corrections,
//! the live stock-pool policy, and every strategy under contention — checked from the database.

use crate::helpers::{INSTANCE, TestApp, eventually, fields, problem};
use futures::future::join_all;
use kommerce_item::domain::stock::{DEFAULT_HASH, Strategy};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const STRATEGIES: [Strategy; 3] = [
    Strategy::SpinLock,
    Strategy::ConditionalUpdate,
    Strategy::Reservation,
];

#[tokio::test]
async fn reservations_are_all_or_nothing_and_answer_repeats_the_same() {
    let app = TestApp::spawn().await;
    let cat = app.category("Tea", None).await;
    let a = app.item(&cat, "Sencha", 1200, 5).await;
    let b = app.item(&cat, "Matcha", 3000, 1).await;

    let id = Uuid::new_v4();
    let (status, body) = app.reserve(id, &[(&a, 2), (&b, 1)]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["status"], "reserved");
    let (again, body_again) = app.reserve(id, &[(&a, 2), (&b, 1)]).await;
    assert_eq!(
        (again, &body_again),
        (StatusCode::CREATED, &body),
        "the first answer, again"
    );
    assert_eq!(
        (app.available(&a).await, app.available(&b).await),
        (3, 0),
        "taken once"
    );

    // Short on one line: nothing is taken from the other, and the short line is named.
    let short = Uuid::new_v4();
    let (status, p) = app.reserve(short, &[(&a, 1), (&b, 1)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(p["lines"].as_array().unwrap().len(), 1);
    assert_eq!(p["lines"][0]["item_id"], b.as_str());
    assert_eq!(p["lines"][0]["reason"], "insufficient_stock");
    assert_eq!(p["lines"][0]["available"], 0);
    assert_eq!(app.available(&a).await, 3, "all or nothing");
    // A refused id stays refused, even after stock comes back.
    app.admin_post(
        &format!("/api/v1/items/{b}/stock"),
        &json!({"delta": 5, "reason": "delivery"}),
    )
    .await;
    assert_eq!(
        app.reserve(short, &[(&a, 1), (&b, 1)]).await.0,
        StatusCode::CONFLICT
    );

    // Unknown items are named; bad quantities are 422.
    let ghost = Uuid::new_v4().to_string();
    let (status, p) = app.reserve(Uuid::new_v4(), &[(&a, 1), (&ghost, 1)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        (
            p["lines"][0]["item_id"].as_str(),
            p["lines"][0]["reason"].as_str()
        ),
        (Some(ghost.as_str()), Some("unknown_item"))
    );
    for qty in [0, -1, 1001] {
        let r = app.send(Method::POST, "/internal/v1/stock/reservations", None, Some(&json!({"reservation_id": Uuid::new_v4(), "lines": [{"item_id": a, "qty": qty}]}))).await;
        let (status, p) = problem(r).await;
        assert_eq!(
            (status, fields(&p)),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                vec!["lines[0].qty".to_owned()]
            )
        );
    }
    assert_eq!(app.available(&a).await, 3);

    // Release restores, idempotently.
    assert_eq!(app.release(id).await, StatusCode::NO_CONTENT);
    assert_eq!(app.release(id).await, StatusCode::NO_CONTENT);
    assert_eq!((app.available(&a).await, app.available(&b).await), (5, 6));
    // A release that overtakes its reservation leaves a tombstone: the late reservation fails.
    let early = Uuid::new_v4();
    assert_eq!(app.release(early).await, StatusCode::NO_CONTENT);
    let (status, p) = app.reserve(early, &[(&a, 1)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        p["type"],
        "https://kommerce.dev/problems/reservation-cancelled"
    );
    assert_eq!(app.available(&a).await, 5);
    app.assert_ledger_explains_stock().await;
}

#[tokio::test]
async fn items_not_on_sale_cannot_be_reserved_and_admins_never_go_below_zero() {
    let app = TestApp::spawn().await;
    let cat = app.category("Tea", None).await;
    let a = app.item(&cat, "Sencha", 1200, 2).await;
    app.send(
        Method::PATCH,
        &format!("/api/v1/items/{a}"),
        Some(&app.admin),
        Some(&json!({"status": "sold_out"})),
    )
    .await;
    let (status, p) = app.reserve(Uuid::new_v4(), &[(&a, 1)]).await;
    assert_eq!(
        (status, p["lines"][0]["reason"].as_str()),
        (StatusCode::CONFLICT, Some("not_on_sale"))
    );

    let r = app
        .admin_post(
            &format!("/api/v1/items/{a}/stock"),
            &json!({"delta": -3, "reason": "breakage"}),
        )
        .await;
    assert_eq!(problem(r).await.0, StatusCode::CONFLICT);
    let r = app
        .admin_post(
            &format!("/api/v1/items/{a}/stock"),
            &json!({"delta": 0, "reason": "x"}),
        )
        .await;
    assert_eq!(fields(&problem(r).await.1), ["delta"]);
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/items/{a}/stock"),
            Some(&app.customer),
            Some(&json!({"delta": 5, "reason": "free stock"})),
        )
        .await;
    assert_eq!(problem(r).await.0, StatusCode::FORBIDDEN);
    let r = app
        .admin_post(
            &format!("/api/v1/items/{a}/stock"),
            &json!({"delta": -2, "reason": "breakage"}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["stock"], 0);
    let ledger: Vec<Value> = app
        .send(
            Method::GET,
            &format!("/api/v1/items/{a}/stock/ledger"),
            Some(&app.admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let reasons: Vec<_> = ledger
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["admin_decrease", "initial"]);
    assert_eq!(ledger[0]["note"], "breakage");
    app.assert_ledger_explains_stock().await;
    // An id that names no item has no ledger: 404, like every other unknown id.
    let r = app
        .send(
            Method::GET,
            &format!("/api/v1/items/{}/stock/ledger", Uuid::new_v4()),
            Some(&app.admin),
            None,
        )
        .await;
    let (status, p) = problem(r).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(p["status"], 404);
}

#[tokio::test]
async fn the_live_policy_follows_the_contract() {
    let app = TestApp::spawn().await;
    // No document: the documented default, acknowledged as `default`.
    app.wait_for_ack(DEFAULT_HASH).await;
    let p: Value = app
        .get("/internal/v1/stock/policy")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (p["policy"]["strategy"].as_str(), p["instance"].as_str()),
        (Some("conditionalUpdate"), Some(INSTANCE))
    );

    let hash = app.strategy(Strategy::Reservation).await;
    let p: Value = app
        .get("/internal/v1/stock/policy")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (p["policy"]["strategy"].as_str(), p["hash"].as_str()),
        (Some("reservation"), Some(hash.as_str()))
    );

    // A document whose hash does not match its content is ignored; the last good one stays.
    let mut conn = redis::Client::open(kommerce_kit::testing::redis_url())
        .unwrap()
        .get_connection()
        .unwrap();
    let tampered = r#"{"hash":"0000000000000000","strategy":"spinLock"}"#;
    let () = redis::cmd("SET")
        .arg(app.key("stockpool:default"))
        .arg(tampered)
        .query(&mut conn)
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(app.key("stockpool:default:changed"))
        .arg("x")
        .query(&mut conn)
        .unwrap();
    // The next periodic acknowledgement still names the good hash.
    let _: () = redis::cmd("DEL")
        .arg(app.key(&format!("stockpool:default:ack:{INSTANCE}")))
        .query(&mut conn)
        .unwrap();
    app.wait_for_ack(&hash).await;
    let p: Value = app
        .get("/internal/v1/stock/policy")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["policy"]["strategy"], "reservation");

    // Removing the document (the operator's finalizer) falls back to the default.
    let _: () = redis::cmd("DEL")
        .arg(app.key("stockpool:default"))
        .query(&mut conn)
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(app.key("stockpool:default:changed"))
        .arg("gone")
        .query(&mut conn)
        .unwrap();
    app.wait_for_ack(DEFAULT_HASH).await;
}

/// 1 item with 100 in stock, 1,000 concurrent single-unit reservations.
async fn hot_item_run(strategy: Strategy) {
    let app = TestApp::spawn().await;
    app.strategy(strategy).await;
    let cat = app.category("Hot", None).await;
    let item = app.item(&cat, "Limited edition", 5000, 100).await;
    let attempts = (0..1000).map(|_| app.reserve_one(Uuid::new_v4(), &item, 1));
    let results = join_all(attempts).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    assert_eq!(
        (created, refused),
        (100, 900),
        "{strategy:?}: exactly the stock was sold"
    );
    // Checked from the database, not from the responses.
    assert_eq!(app.available(&item).await, 0, "{strategy:?}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM reservations WHERE status = 'reserved'")
            .await,
        100
    );
    assert_eq!(
        app.scalar("SELECT COALESCE(sum(qty), 0) FROM reservation_lines")
            .await,
        100
    );
    app.assert_ledger_explains_stock().await;
    assert_eq!(app.scalar("SELECT sold_count FROM items").await, 100);
}

#[tokio::test]
async fn spin_lock_never_oversells_a_hot_item() {
    hot_item_run(Strategy::SpinLock).await;
}

#[tokio::test]
async fn conditional_update_never_oversells_a_hot_item() {
    hot_item_run(Strategy::ConditionalUpdate).await;
}

#[tokio::test]
async fn the_reservation_gate_never_oversells_a_hot_item() {
    hot_item_run(Strategy::Reservation).await;
}

/// 200 buyers, each wanting 1–3 of 5 hot items (qty 1–2): no deadlock, no negative stock, and
/// every reservation is whole or absent.
#[tokio::test]
async fn multi_line_reservations_stay_all_or_nothing_under_contention() {
    for strategy in STRATEGIES {
        let app = TestApp::spawn().await;
        app.strategy(strategy).await;
        let cat = app.category("Hot", None).await;
        let mut items = Vec::new();
        for i in 0..5 {
            items.push(app.item(&cat, &format!("Hot {i}"), 1000, 40).await);
        }
        let mut wanted = Vec::new();
        for buyer in 0..200usize {
            let n = 1 + buyer % 3;
            let lines: Vec<(String, i64)> = (0..n)
                .map(|k| {
                    (
                        items[(buyer * 7 + k * 3) % 5].clone(),
                        1 + i64::try_from((buyer + k) % 2).unwrap(),
                    )
                })
                .collect();
            let mut distinct = lines.clone();
            distinct.sort();
            distinct.dedup_by(|a, b| a.0 == b.0);
            wanted.push(distinct);
        }
        let runs = wanted.iter().map(|lines| {
            let refs: Vec<(&str, i64)> = lines.iter().map(|(i, q)| (i.as_str(), *q)).collect();
            let app = &app;
            async move { app.reserve(Uuid::new_v4(), &refs).await.0 }
        });
        let statuses = join_all(runs).await;
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
            "{strategy:?}: {statuses:?}"
        );
        let created = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        assert!(created > 0, "{strategy:?}");
        // Every reserved reservation has all its lines; every refused one has none.
        let partial = app
            .scalar("SELECT count(*) FROM reservations r WHERE r.status = 'rejected' AND EXISTS (SELECT 1 FROM reservation_lines l WHERE l.reservation_id = r.id)")
            .await;
        assert_eq!(partial, 0, "{strategy:?}");
        assert_eq!(
            app.scalar("SELECT count(*) FROM reservations WHERE status = 'reserved'")
                .await,
            i64::try_from(created).unwrap()
        );
        app.assert_ledger_explains_stock().await;
        for item in &items {
            let reserved: i64 = sqlx::query_scalar(
                "SELECT COALESCE(sum(qty), 0) FROM reservation_lines WHERE item_id = $1",
            )
            .bind(item.parse::<Uuid>().unwrap())
            .fetch_one(app.pool())
            .await
            .unwrap();
            assert_eq!(
                app.available(item).await,
                40 - reserved,
                "{strategy:?}: units reserved match units gone"
            );
        }
    }
}

#[tokio::test]
async fn switching_strategy_mid_run_loses_and_duplicates_nothing() {
    let app = TestApp::spawn().await;
    app.strategy(Strategy::SpinLock).await;
    let cat = app.category("Hot", None).await;
    let item = app.item(&cat, "Limited edition", 5000, 300).await;
    let ids: Vec<Uuid> = (0..600).map(|_| Uuid::new_v4()).collect();
    let buyers = ids.iter().map(|id| app.reserve_one(*id, &item, 1));
    let switching = async {
        // Switch twice while the buyers are running, once the run is under way.
        eventually("the run started", || async {
            app.scalar("SELECT count(*) FROM reservations").await >= 50
        })
        .await;
        app.strategy(Strategy::Reservation).await;
        eventually("the run went on", || async {
            app.scalar("SELECT count(*) FROM reservations").await >= 250
        })
        .await;
        app.strategy(Strategy::ConditionalUpdate).await;
    };
    let (results, ()) = tokio::join!(join_all(buyers), switching);
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 300, "demand 600, supply 300: every unit sold once");
    assert_eq!(app.available(&item).await, 0);
    // Each id has one answer, and repeating every id changes nothing.
    assert_eq!(app.scalar("SELECT count(*) FROM reservations").await, 600);
    let again = join_all(ids.iter().map(|id| app.reserve_one(*id, &item, 1))).await;
    for ((first, _), (second, _)) in results.iter().zip(&again) {
        assert_eq!(first, second);
    }
    assert_eq!(app.available(&item).await, 0);
    app.assert_ledger_explains_stock().await;
}

#[tokio::test]
async fn a_redis_restart_loses_no_acknowledged_reservation_and_oversells_nothing() {
    let app = TestApp::spawn().await;
    app.strategy(Strategy::Reservation).await;
    let cat = app.category("Hot", None).await;
    let item = app.item(&cat, "Limited edition", 5000, 20).await;
    let first: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    for id in &first {
        assert_eq!(app.reserve(*id, &[(&item, 1)]).await.0, StatusCode::CREATED);
    }
    app.flush_redis();
    // The acknowledged ones still answer the same, from PostgreSQL ...
    for id in &first {
        assert_eq!(app.reserve(*id, &[(&item, 1)]).await.0, StatusCode::CREATED);
    }
    // ... and the cold gate is rebuilt from PostgreSQL: 10 more, not 20.
    let results = join_all((0..30).map(|_| app.reserve_one(Uuid::new_v4(), &item, 1))).await;
    assert_eq!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        10
    );
    assert_eq!(app.available(&item).await, 0);
    app.assert_ledger_explains_stock().await;
}

/// What Redis losing its keys in the middle of reservations can leave behind: the gate's counter
/// rebuilt from PostgreSQL while reservations it had already let through were not committed, so
/// it promises more than there is. PostgreSQL still decides: exactly the stock is sold, the
/// rest are refused naming the item, and the counter is rebuilt from the truth.
#[tokio::test]
async fn a_gate_that_promises_more_than_there_is_still_cannot_oversell() {
    let app = TestApp::spawn().await;
    app.strategy(Strategy::Reservation).await;
    let cat = app.category("Hot", None).await;
    let item = app.item(&cat, "Limited edition", 5000, 100).await;
    // Warm the gate, then make it promise ten times the stock.
    assert_eq!(
        app.reserve_one(Uuid::new_v4(), &item, 1).await.0,
        StatusCode::CREATED
    );
    app.set_redis(&format!("item:avail:{item}"), 1_000);
    let results = join_all((0..1000).map(|_| app.reserve_one(Uuid::new_v4(), &item, 1))).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 99, "PostgreSQL sold exactly what was left");
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(refused.len(), 901);
    assert!(
        refused
            .iter()
            .all(|b| b["lines"][0]["item_id"] == item.as_str()
                && b["lines"][0]["reason"] == "insufficient_stock"),
        "{:?}",
        refused.first()
    );
    assert_eq!(app.available(&item).await, 0);
    assert_eq!(
        app.scalar("SELECT count(*) FROM reservations WHERE status = 'reserved'")
            .await,
        100
    );
    app.assert_ledger_explains_stock().await;
    // The next attempt is refused by a counter rebuilt from PostgreSQL.
    assert_eq!(
        app.reserve_one(Uuid::new_v4(), &item, 1).await.0,
        StatusCode::CONFLICT
    );
    eventually("the counter is rebuilt from the truth", || async {
        app.get_redis(&format!("item:avail:{item}")) == Some(0)
    })
    .await;
}

/// The spin lock keeps contention off PostgreSQL; it is not what keeps stock right. Locks lost
/// while their holders work (Redis emptied again and again) sell exactly the stock.
#[tokio::test]
async fn spin_locks_lost_mid_run_still_sell_exactly_the_stock() {
    let app = TestApp::spawn().await;
    app.strategy(Strategy::SpinLock).await;
    let cat = app.category("Hot", None).await;
    let item = app.item(&cat, "Limited edition", 5000, 100).await;
    let done = std::sync::atomic::AtomicBool::new(false);
    let buyers = async {
        let r = join_all((0..600).map(|_| app.reserve_one(Uuid::new_v4(), &item, 1))).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    };
    let losing = async {
        let mut lost = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            lost += app.delete_redis(&format!("item:lock:{item}"));
            tokio::task::yield_now().await;
        }
        lost
    };
    let (results, lost) = tokio::join!(buyers, losing);
    assert!(
        lost > 0,
        "no lock was lost while held: the test proved nothing"
    );
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 100);
    assert!(
        results.iter().all(|(s, _)| *s == StatusCode::CREATED
            || *s == StatusCode::CONFLICT
            || *s == StatusCode::SERVICE_UNAVAILABLE),
        "every other buyer was refused clearly"
    );
    assert_eq!(app.available(&item).await, 0);
    app.assert_ledger_explains_stock().await;
}

#[tokio::test]
async fn the_warm_reservation_gate_still_refuses_items_taken_off_sale() {
    let app = TestApp::spawn().await;
    app.strategy(Strategy::Reservation).await;
    let cat = app.category("Tea", None).await;
    let a = app.item(&cat, "Sencha", 1200, 10).await;
    // Warm the gate's counter with a first reservation.
    assert_eq!(
        app.reserve_one(Uuid::new_v4(), &a, 1).await.0,
        StatusCode::CREATED
    );
    app.send(
        Method::PATCH,
        &format!("/api/v1/items/{a}"),
        Some(&app.admin),
        Some(&json!({"status": "hidden"})),
    )
    .await;
    let (status, p) = app.reserve_one(Uuid::new_v4(), &a, 1).await;
    assert_eq!(
        (status, p["lines"][0]["reason"].as_str()),
        (StatusCode::CONFLICT, Some("not_on_sale"))
    );
    // Back on sale: the gate is rebuilt from PostgreSQL and sells the rest, not more.
    app.send(
        Method::PATCH,
        &format!("/api/v1/items/{a}"),
        Some(&app.admin),
        Some(&json!({"status": "on_sale"})),
    )
    .await;
    let results = join_all((0..15).map(|_| app.reserve_one(Uuid::new_v4(), &a, 1))).await;
    assert_eq!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        9
    );
    // Deleted: refused as unknown.
    app.send(
        Method::DELETE,
        &format!("/api/v1/items/{a}"),
        Some(&app.admin),
        None,
    )
    .await;
    let (status, p) = app.reserve_one(Uuid::new_v4(), &a, 1).await;
    assert_eq!(
        (status, p["lines"][0]["reason"].as_str()),
        (StatusCode::CONFLICT, Some("unknown_item"))
    );
    app.assert_ledger_explains_stock().await;
}
