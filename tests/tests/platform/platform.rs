//! The platform as a user meets it: every service its own process, started by the supervisor
//! behind `kommerce up` with the same telemetry set-up, behind the local router — under a
//! checkout load, and with the order service killed in the middle of it. (The in-process tests
//! never installed the real subscriber per service: that is how a span held across an `.await`
//! panicked consumers under load without any test noticing; see issue 10.)
//!
//! Needs the service binaries next to this test's directory (`make test` builds them first).

use std::time::{Duration, Instant};

use crate::common::{assert_the_books_balance, eventually, scalar};
use crate::live::{BALANCE, Live, buyers};
use reqwest::StatusCode;
use serde_json::Value;

/// 1,000 shoppers check out one unit each of an item with 100 in stock, all at once, through
/// the router: every payment settles (order or refund) within the bound, exactly the stock is
/// sold, the money adds up, every event is applied once, and no worker ever died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_checkouts_on_the_running_platform_all_settle() {
    let n = buyers();
    let units = (n / 10) as i64;
    let live = Live::start().await;
    let item = live.item(units).await;
    let people = live.shoppers(n, item).await;

    let started = Instant::now();
    let paid = futures::future::join_all(people.iter().map(|(p, l)| live.checkout(p, *l))).await;
    let accepted = started.elapsed();
    for (status, body) in &paid {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    eventually(
        "every payment settled",
        Duration::from_secs(180),
        || async { live.pending().await == 0 },
    )
    .await;
    let settled = started.elapsed();
    eprintln!(
        "platform load: {n} payments accepted in {:.2} s ({:.0}/s, {} answers of 503 retried); all settled after {:.2} s ({:.0} checkouts/s end to end)",
        accepted.as_secs_f64(),
        n as f64 / accepted.as_secs_f64(),
        live.retries.load(std::sync::atomic::Ordering::Relaxed),
        settled.as_secs_f64(),
        n as f64 / settled.as_secs_f64(),
    );
    assert_the_books_balance(&live.order_db, &live.pay_db, n as i64, units, BALANCE).await;
    live.assert_each_payment_applied_once(n as i64).await;
    // The SRE's view of the same books: `kommerce audit` finds them consistent, and names
    // the damage once a wallet's balance moves without its ledger.
    let (code, report) = live.audit().await;
    assert_eq!(code, Some(0), "{report}");
    sqlx::query(
        "UPDATE wallets SET balance_minor = balance_minor + 1 \
         WHERE user_id = (SELECT user_id FROM wallets ORDER BY user_id LIMIT 1)",
    )
    .execute(&live.pay_db)
    .await
    .unwrap();
    let (code, report) = live.audit().await;
    assert_eq!(code, Some(1), "{report}");
    let report: Value = serde_json::from_str(&report).unwrap();
    let violated: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["violations"].as_array().unwrap().is_empty())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(violated, ["wallet-ledger", "money"], "{report}");
    live.all_ready().await;
    for service in ["order", "pay"] {
        let metrics = live.metrics(service).await;
        assert!(
            !metrics.contains("worker_restarts_total"),
            "{service}: a worker died under load:\n{metrics}"
        );
    }
    live.stop().await;
}

/// The order service is killed (SIGKILL, mid-message under load) and started again: every
/// payment still settles exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_order_service_under_load_loses_and_repeats_nothing() {
    let n = (buyers() / 2).max(20);
    let units = (n / 10) as i64;
    let mut live = Live::start().await;
    let item = live.item(units).await;
    let people = live.shoppers(n, item).await;

    let paid = futures::future::join_all(people.iter().map(|(p, l)| live.checkout(p, *l))).await;
    for (status, body) in &paid {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    // Kill it while it is working through the backlog.
    let order_db = live.order_db.clone();
    eventually(
        "order is applying payments",
        Duration::from_secs(120),
        || async { scalar(&order_db, "SELECT count(*) FROM inbox").await > 0 },
    )
    .await;
    live.platform().kill("order").await.unwrap();
    let applied_before = scalar(&order_db, "SELECT count(*) FROM inbox").await;
    live.platform().restart("order").await.unwrap();
    eventually(
        "every payment settled",
        Duration::from_secs(180),
        || async { live.pending().await == 0 },
    )
    .await;
    eprintln!("order killed after applying {applied_before} of {n} payment events");
    assert_the_books_balance(&live.order_db, &live.pay_db, n as i64, units, BALANCE).await;
    live.assert_each_payment_applied_once(n as i64).await;
    live.all_ready().await;
    live.stop().await;
}
