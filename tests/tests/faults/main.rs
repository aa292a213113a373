//! The fault suite: the platform as separate OS processes (as `kommerce up` runs it), shoppers
//! buying, cancelling and topping up without pause, and faults injected one kind at a time and
//! then together: `kill -9` of order, pay and item, then started again; Redis losing every key
//! of the platform (under each stock strategy, on an item that sells out); the network to
//! PostgreSQL stalling, then every connection cut (a TCP proxy in front of it); and, in the full
//! run only, PostgreSQL, Redis (empty) and the Kafka broker themselves stopped and started
//! again, and all of it at once. After each heals: every accepted payment ends in exactly one
//! order or one refund, nothing is oversold, no outbox row is stuck, and `kommerce audit` (run
//! as an SRE runs it) is clean.
//!
//! `KOMMERCE_FAULTS=smoke` (the default, inside `make test`): each kind once, under a small load,
//! never touching the engines other tests share. `KOMMERCE_FAULTS=full` (`make test-faults`):
//! each several times, the engines restarted, mixed faults, more shoppers, longer.
//! `KOMMERCE_FAULTS_SEED` replays a run (the seed is printed); `KOMMERCE_FAULTS_OUT` names a
//! file the table is written to; `KOMMERCE_FAULTS_DEBUG` prints every refused request.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/live.rs"]
mod live;
#[path = "../common/proxy.rs"]
mod proxy;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use kommerce_item::domain::stock::Strategy;

use crate::common::{Shopper, eventually, insert_shoppers, scalar};
use crate::live::{Live, server_url};
use crate::proxy::Proxy;

/// How a request ended, as a shopper sees it.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicUsize,
    /// A payment accepted (201).
    accepted: AtomicUsize,
    /// Refused with a problem+json a client can act on (4xx, 503 with Retry-After).
    clear: AtomicUsize,
    /// Anything else: a 500, a body that is not a problem, a reset connection — must be 0
    /// outside the moments a process is dead (then the router answers 502 problem+json).
    unclear: AtomicUsize,
    cancels: AtomicUsize,
    top_ups: AtomicUsize,
}

impl Tally {
    fn judge(&self, status: StatusCode, body: &Value) {
        let problem = body["type"].is_string() && body["status"].is_number();
        let unavailable =
            status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::BAD_GATEWAY;
        if problem && (status.is_client_error() || unavailable) {
            if std::env::var("KOMMERCE_FAULTS_DEBUG").is_ok() {
                eprintln!("clear: {status} {body}");
            }
            self.clear.fetch_add(1, Ordering::SeqCst);
        } else if !status.is_success() {
            eprintln!("unclear answer: {status} {body}");
            self.unclear.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The load: each shopper, until stopped, adds one unit to the cart and pays for it (the
/// same `Idempotency-Key` until an answer that is not a 502/503), sometimes cancels an
/// order or tops up.
/// What every shopper of one round shares.
#[derive(Clone)]
struct Load {
    http: Client,
    base: String,
    item: Uuid,
    price: i64,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
}

async fn shop_until(load: Load, shopper: Shopper, seed: u64) {
    let Load {
        http,
        base,
        item,
        price,
        stop,
        tally,
    } = load;
    let mut rng = StdRng::seed_from_u64(seed);
    let call = async |method: reqwest::Method, path: &str, body: Value, key: Option<&str>| {
        let mut r = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&shopper.token)
            .json(&body);
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        match r.send().await {
            Ok(r) => {
                let status = r.status();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                json!({"type": "connection", "status": 502, "detail": e.to_string()}),
            ),
        }
    };
    while !stop.load(Ordering::SeqCst) {
        tally.sent.fetch_add(1, Ordering::SeqCst);
        let (status, line) = call(
            reqwest::Method::POST,
            "/api/v1/cart/items",
            json!({"item_id": item, "qty": 1}),
            None,
        )
        .await;
        if !status.is_success() {
            tally.judge(status, &line);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let key = format!("faults-{}", Uuid::new_v4());
        // The line may hold more than one unit when an earlier payment's order is not made yet.
        let amount = price * line["qty"].as_i64().unwrap_or(1);
        let body = json!({"cart_line_ids": [line["id"]], "address_id": shopper.address_id,
                          "amount_minor": amount, "method": "wallet"});
        // A client retries the same payment (same key) while the platform is unavailable.
        let mut answer = None;
        for _ in 0..200 {
            tally.sent.fetch_add(1, Ordering::SeqCst);
            let (status, paid) = call(
                reqwest::Method::POST,
                "/api/v1/payments",
                body.clone(),
                Some(&key),
            )
            .await;
            if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::BAD_GATEWAY {
                tally.judge(status, &paid);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            answer = Some((status, paid));
            break;
        }
        let Some((status, paid)) = answer else {
            continue;
        };
        if status == StatusCode::CREATED {
            tally.accepted.fetch_add(1, Ordering::SeqCst);
        } else {
            tally.judge(status, &paid);
        }
        if status == StatusCode::PAYMENT_REQUIRED {
            // The wallet ran dry (a release build buys fast): fill it up again.
            tally.sent.fetch_add(1, Ordering::SeqCst);
            let (status, body) = call(
                reqwest::Method::POST,
                "/api/v1/wallet/top-up",
                json!({"amount_minor": 1_000_000}),
                Some(&format!("refill-{}", Uuid::new_v4())),
            )
            .await;
            if status.is_success() {
                tally.top_ups.fetch_add(1, Ordering::SeqCst);
            } else {
                tally.judge(status, &body);
            }
            continue;
        }
        // Sometimes: cancel an order of mine, or top up.
        if rng.random_bool(0.1) {
            tally.sent.fetch_add(1, Ordering::SeqCst);
            let (status, orders) = call(
                reqwest::Method::GET,
                "/api/v1/orders?limit=5",
                Value::Null,
                None,
            )
            .await;
            if let Some(id) = orders["orders"]
                .as_array()
                .and_then(|o| o.iter().find(|o| o["status"] == "created"))
                .and_then(|o| o["id"].as_str())
            {
                tally.sent.fetch_add(1, Ordering::SeqCst);
                let (status, body) = call(
                    reqwest::Method::POST,
                    &format!("/api/v1/orders/{id}/cancel"),
                    Value::Null,
                    None,
                )
                .await;
                if status == StatusCode::ACCEPTED {
                    tally.cancels.fetch_add(1, Ordering::SeqCst);
                } else {
                    tally.judge(status, &body);
                }
            } else if !status.is_success() {
                tally.judge(status, &orders);
            }
        } else if rng.random_bool(0.05) {
            tally.sent.fetch_add(1, Ordering::SeqCst);
            let (status, body) = call(
                reqwest::Method::POST,
                "/api/v1/wallet/top-up",
                json!({"amount_minor": 500}),
                Some(&format!("top-up-{}", Uuid::new_v4())),
            )
            .await;
            if status.is_success() {
                tally.top_ups.fetch_add(1, Ordering::SeqCst);
            } else {
                tally.judge(status, &body);
            }
        }
    }
}

/// A fault the suite injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `kill -9` of a service, then started again.
    Kill(&'static str),
    /// Every key of the platform's Redis prefix deleted: a Redis restart without persistence,
    /// as this platform alone sees it.
    RedisLosesKeys,
    /// The network between the services and PostgreSQL stalls, then every connection is cut.
    NetworkStall,
    /// A shared engine (`postgres`, `redis` — which comes back empty — or `kafka`) stopped and
    /// started again. Full run only: other tests share these engines.
    Restart(&'static str),
    /// `kill -9` of item, Redis stopped, the network to PostgreSQL stalled — at once. Full run
    /// only.
    Mixed,
}

impl Fault {
    fn name(self) -> String {
        match self {
            Self::Kill(v) => format!("kill -9 {v}"),
            Self::RedisLosesKeys => "Redis loses every key".into(),
            Self::NetworkStall => "network to PostgreSQL stalls, then cut".into(),
            Self::Restart("kafka") => "Kafka broker restart".into(),
            Self::Restart("redis") => "Redis restart (empty)".into(),
            Self::Restart(e) => format!("{e} restart"),
            Self::Mixed => "mixed: kill -9 item + Redis restart + network stall".into(),
        }
    }

    fn loses_redis(self) -> bool {
        matches!(
            self,
            Self::RedisLosesKeys | Self::Restart("redis") | Self::Mixed
        )
    }
}

/// One round: a fault under a stock strategy, on an item with plenty of stock or one that
/// sells out during the round.
#[derive(Debug, Clone, Copy)]
struct Round {
    fault: Fault,
    strategy: Strategy,
    scarce: bool,
}

fn plan(full: bool) -> Vec<Round> {
    let plenty = |fault| Round {
        fault,
        strategy: Strategy::ConditionalUpdate,
        scarce: false,
    };
    let scarce = |fault, strategy| Round {
        fault,
        strategy,
        scarce: true,
    };
    let kills = [
        Fault::Kill("order"),
        Fault::Kill("pay"),
        Fault::Kill("item"),
        Fault::RedisLosesKeys,
    ];
    let one_of_each = |rounds: &mut Vec<Round>| {
        rounds.extend(kills.map(plenty));
        rounds.push(scarce(Fault::RedisLosesKeys, Strategy::Reservation));
        rounds.push(scarce(Fault::RedisLosesKeys, Strategy::SpinLock));
        rounds.push(plenty(Fault::NetworkStall));
    };
    let mut rounds = Vec::new();
    one_of_each(&mut rounds);
    if full {
        rounds.extend(kills.map(plenty));
        rounds.extend(kills.map(plenty));
        for _ in 0..2 {
            rounds.push(scarce(Fault::RedisLosesKeys, Strategy::Reservation));
            rounds.push(scarce(Fault::RedisLosesKeys, Strategy::SpinLock));
            rounds.push(scarce(Fault::NetworkStall, Strategy::Reservation));
            rounds.push(plenty(Fault::Restart("postgres")));
            rounds.push(scarce(Fault::Restart("redis"), Strategy::Reservation));
            rounds.push(scarce(Fault::Restart("kafka"), Strategy::SpinLock));
            rounds.push(scarce(Fault::Mixed, Strategy::Reservation));
        }
    }
    rounds
}

/// `scripts/deps.sh` with `args` (stop or start an engine); panics if it fails.
async fn deps(args: &[&str]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/deps.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "deps.sh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Injects `fault` and heals it; returns when the healing began (the service started again, the
/// engine back, the network whole).
async fn inject(live: &mut Live, proxy: &Proxy, fault: Fault, rng: &mut StdRng) -> Instant {
    match fault {
        Fault::Kill(victim) => {
            live.platform().kill(victim).await.unwrap();
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
            let healing = Instant::now();
            live.platform().restart(victim).await.unwrap();
            healing
        }
        Fault::RedisLosesKeys => {
            let lost = live.lose_every_redis_key();
            println!("Redis lost {lost} keys");
            Instant::now()
        }
        Fault::NetworkStall => {
            proxy.stall();
            tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..4_000))).await;
            let healing = Instant::now();
            let cut = proxy.heal(true);
            println!("network healed, {cut} connections cut");
            healing
        }
        Fault::Restart(engine) => {
            deps(&["stop", engine]).await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..1_500))).await;
            deps(&[engine]).await;
            Instant::now()
        }
        Fault::Mixed => {
            live.platform().kill("item").await.unwrap();
            proxy.stall();
            deps(&["stop", "redis"]).await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(500..2_000))).await;
            deps(&["redis"]).await;
            proxy.heal(true);
            let healing = Instant::now();
            live.platform().restart("item").await.unwrap();
            healing
        }
    }
}

/// One row of the table.
struct Row {
    fault: String,
    strategy: &'static str,
    stock: String,
    sent: usize,
    accepted: usize,
    clear: usize,
    unclear: usize,
    settled: i64,
    heal: Duration,
    violations: usize,
}

fn table(rows: &[Row], seed: u64) -> String {
    let mut out = format!(
        "Fault suite, seed {seed}\n\n| fault | stock strategy | units sold / stock | requests sent | payments accepted | failed with a clear error | unclear | sagas settled | time to heal | violations |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} |",
            r.fault,
            r.strategy,
            r.stock,
            r.sent,
            r.accepted,
            r.clear,
            r.unclear,
            r.settled,
            r.heal.as_secs_f64(),
            r.violations
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_heals_from_every_fault_and_the_books_stay_right() {
    let full = std::env::var("KOMMERCE_FAULTS").is_ok_and(|v| v == "full");
    let seed: u64 = std::env::var("KOMMERCE_FAULTS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!(
        "fault suite: {} run, seed {seed}",
        if full { "full" } else { "smoke" }
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let (shoppers, load_ms, scarce_stock) = if full {
        (40, 4_000, 150)
    } else {
        (12, 1_500, 40)
    };
    let price = crate::live::PRICE;

    // The services reach PostgreSQL through a proxy the suite can break.
    let (pg, through) = through_proxy(&server_url());
    let proxy = Proxy::start(tokio::net::lookup_host(pg).await.unwrap().next().unwrap()).await;
    let through = through(proxy.addr());
    let mut live = Live::start_on(&[], through).await;
    let plenty = live.item(1_000_000).await;
    let people = insert_shoppers(&live.user_db, &live.signer, shoppers).await;
    for p in &people {
        let (s, body) = live
            .call(
                reqwest::Method::POST,
                "/api/v1/wallet/top-up",
                &p.token,
                Some(&json!({"amount_minor": 1_000_000})),
                Some(&format!("start-{}", p.id)),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    let mut rows = Vec::new();
    let mut strategy = Strategy::ConditionalUpdate;
    for (index, round) in plan(full).into_iter().enumerate() {
        if round.strategy != strategy {
            live.stock_strategy(round.strategy).await;
            strategy = round.strategy;
        }
        let item = if round.scarce {
            live.item(scarce_stock).await
        } else {
            plenty
        };
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Load {
            http: live.http.clone(),
            base: live.base.clone(),
            item,
            price,
            stop: stop.clone(),
            tally: tally.clone(),
        };
        let load: Vec<_> = people
            .iter()
            .enumerate()
            .map(|(i, p)| {
                tokio::spawn(shop_until(
                    shared.clone(),
                    p.clone(),
                    seed ^ ((index as u64) << 32) ^ i as u64,
                ))
            })
            .collect();
        // At a random moment of the load, the fault; the load goes on while it heals.
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..load_ms))).await;
        let healing = inject(&mut live, &proxy, round.fault, &mut rng).await;
        if round.fault.loses_redis() && strategy != Strategy::ConditionalUpdate {
            // The operator writes the lost policy again (until then the item service applies
            // the default, which needs no Redis).
            live.stock_strategy(strategy).await;
        }
        tokio::time::sleep(Duration::from_millis(load_ms / 2)).await;
        stop.store(true, Ordering::SeqCst);
        for task in load {
            task.await.unwrap();
        }
        // Healed: every payment settled, outboxes drained, and the audit clean — within 30 s.
        eventually("every payment settled", Duration::from_secs(30), || async {
            live.pending().await == 0
        })
        .await;
        let (code, report) = eventually_clean(&live).await;
        let heal = healing.elapsed();
        let report: Value = serde_json::from_str(&report).unwrap_or(Value::Null);
        let violations: usize = report["checks"].as_array().map_or(usize::MAX, |c| {
            c.iter()
                .map(|c| c["violations"].as_array().map_or(0, Vec::len))
                .sum()
        });
        let settled = scalar(
            &live.pay_db,
            "SELECT count(*) FROM payments WHERE status <> 'pending_order'",
        )
        .await;
        let left = live.available(item).await;
        let stock = if round.scarce {
            format!("{} / {scarce_stock}", scarce_stock - left)
        } else {
            "plenty".to_owned()
        };
        let name = round.fault.name();
        rows.push(Row {
            fault: name.clone(),
            strategy: strategy.as_str(),
            stock,
            sent: tally.sent.load(Ordering::SeqCst),
            accepted: tally.accepted.load(Ordering::SeqCst),
            clear: tally.clear.load(Ordering::SeqCst),
            unclear: tally.unclear.load(Ordering::SeqCst),
            settled,
            heal,
            violations,
        });
        println!("{}", table(&rows[rows.len() - 1..], seed));
        assert!(left >= 0, "{name}: item {item} oversold ({left} left)");
        assert_eq!(code, Some(0), "{name}: the audit is not clean:\n{report:#}");
        assert!(
            tally.accepted.load(Ordering::SeqCst) > 0,
            "{name}: no payment was accepted around it"
        );
    }
    let text = table(&rows, seed);
    println!("{text}");
    if let Ok(path) = std::env::var("KOMMERCE_FAULTS_OUT") {
        std::fs::write(path, &text).unwrap();
    }
    // Every accepted payment ended in exactly one order or one refund (the audit's first
    // checks), and nothing answered unclearly while the platform was whole.
    for r in &rows {
        assert_eq!(r.violations, 0, "{text}");
        assert_eq!(r.unclear, 0, "{text}");
    }
    live.all_ready().await;
    live.stop().await;
    drop(proxy);
}

/// The `host:port` of a PostgreSQL URL, and the same URL through another address.
fn through_proxy(url: &str) -> (String, impl Fn(std::net::SocketAddr) -> String + use<>) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (user, host) = authority
        .rsplit_once('@')
        .map_or(("", authority), |(u, h)| (u, h));
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    let at = if user.is_empty() { "" } else { "@" };
    let (scheme, user, tail) = (scheme.to_owned(), user.to_owned(), tail.to_owned());
    (host, move |proxy| {
        format!("{scheme}://{user}{at}{proxy}{tail}")
    })
}

/// `kommerce audit` until it is clean (up to 30 s): its exit code and last report.
async fn eventually_clean(live: &Live) -> (Option<i32>, String) {
    let started = Instant::now();
    loop {
        let (code, report) = live.audit().await;
        if code == Some(0) || started.elapsed() > Duration::from_secs(30) {
            return (code, report);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
