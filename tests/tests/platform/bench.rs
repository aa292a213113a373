//! `kommerce bench checkout` in miniature: a benchmark is not a timed test, but its harness is
//! code — this proves it drives the platform as separate processes through both phases,
//! measures the ceilings and the footprint, writes its files, and that its invariant check
//! catches books that do not add up.

use std::path::PathBuf;
use std::time::Duration;

use crate::live::{Live, server_url};
use kommerce::bench::checkout::{CheckoutBench, invariants, run};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_benchmark_drives_both_phases_and_checks_the_books() {
    let bin_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(std::path::Path::parent)
        .map(PathBuf::from)
        .unwrap();
    let out = std::env::temp_dir().join(format!("kommerce-bench-{}", uuid::Uuid::new_v4()));
    let report = run(CheckoutBench {
        shoppers: 12,
        items: 2,
        concurrency: 3,
        duration: Duration::from_secs(3),
        attempts: 30,
        rate: Some(8.0),
        out_dir: Some(out.clone()),
        bin_dir,
        database_url: server_url(),
        redis_url: "redis://127.0.0.1:6379".into(),
        kafka: std::env::var("KOMMERCE_TEST_KAFKA").ok(),
        progress: false,
        env: Vec::new(),
        strategy: kommerce_contracts::stock_pool::Strategy::Reservation,
    })
    .await
    .unwrap();

    assert!(report.invariants.ok, "{:?}", report.invariants);
    assert_eq!(report.strategy, "reservation");
    assert_eq!(report.phases.len(), 2);
    for p in &report.phases {
        assert!(p.accepted > 0, "{p:?}");
        assert_eq!(p.errors.len(), 0, "{p:?}");
        // Every accepted payment ended: an order (these items never run out).
        assert_eq!((p.settled, p.completed), (p.accepted, p.accepted), "{p:?}");
        assert_eq!(p.orders_per_second.iter().sum::<usize>(), p.completed);
        assert!(p.latency.p50_ms > 0.0 && p.latency.max_ms >= p.latency.p99_ms);
        assert!(p.commits_per_checkout >= 1.0, "{p:?}");
    }
    assert_eq!(report.phases[0].mode, "closed");
    assert!((report.phases[1].rate - 8.0).abs() < f64::EPSILON);
    let c = &report.ceilings;
    assert!(c.pg_commits_per_sec > 0.0 && c.http_noop_per_sec > 0.0 && c.kafka_rtt_p50_ms > 0.0);
    assert_eq!(report.footprint.len(), 6);
    for f in &report.footprint {
        assert!(
            f.ready_ms > 0.0 && f.rss_idle_mb > 0.0 && f.rss_after_open_mb > 0.0,
            "{f:?}"
        );
    }

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkout.json")).unwrap()).unwrap();
    assert_eq!(json["phases"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["invariants"]["ok"], true);
    let svg = std::fs::read_to_string(out.join("checkout.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2);
    std::fs::remove_dir_all(&out).unwrap();
}

/// The check the benchmark ends with fails when a wallet moves without its ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmarks_invariant_check_catches_money_out_of_thin_air() {
    let live = Live::start().await;
    let item = live.item(5).await;
    let people = live.shoppers(3, item).await;
    for (p, line) in &people {
        let (status, body) = live.checkout(p, *line).await;
        assert!(status.is_success(), "{body}");
    }
    crate::common::eventually("every payment settled", Duration::from_secs(60), || async {
        live.pending().await == 0
    })
    .await;
    let sources =
        kommerce::audit::Sources::connect(&server_url(), live.opts.namespace.as_deref(), None)
            .unwrap();
    let books = invariants(&sources).await.unwrap();
    assert!(books.ok, "{books:?}");
    assert_eq!(books.units_sold, 3);
    sqlx::query("UPDATE wallets SET balance_minor = balance_minor + 1 WHERE user_id = $1")
        .bind(people[0].0.id)
        .execute(&live.pay_db)
        .await
        .unwrap();
    let books = invariants(&sources).await.unwrap();
    assert!(!books.ok);
    assert_eq!(
        books.money_in_wallets_and_payments,
        books.money_topped_up + 1
    );
    live.stop().await;
}
