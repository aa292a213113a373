//! `kommerce bench checkout`: the whole shop as `kommerce up` runs it — every service its own OS
//! process (the binaries next to this one: release under `make bench`), behind the local router,
//! on the real PostgreSQL, Redis and broker — driven through the public API: add to cart, pay,
//! and the saga makes the order. Two phases: a fixed number of concurrent shoppers (closed
//! loop), then a fixed arrival rate (open loop: queueing shows up as latency, not as a slower
//! client). The machine's ceilings are measured in the same run, so the ratios mean something:
//! PostgreSQL's durable commit rate, the router and one service answering a no-op request, and
//! the broker's produce→consume round trip. Payment→order latency comes from the saga's own
//! timestamps (the payment's and the order's `created_at`), not from client polling. The books
//! are audited at the end; a run whose invariants fail is an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::testing::auth_settings;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Shopper, insert_shoppers, percentile};
use crate::supervisor::{Platform, UpOptions};

/// The price of every benchmark item (minor units) and what each shopper's wallet gets.
const PRICE: i64 = 1_000;
const TOP_UP: i64 = 1_000_000;
/// How long each ceiling is measured.
const CEILING_SECS: f64 = 4.0;

#[derive(Debug, Clone)]
pub struct CheckoutBench {
    pub shoppers: usize,
    pub items: usize,
    /// Concurrent shoppers of the closed loop (and of the ceilings).
    pub concurrency: usize,
    /// How long each phase issues checkouts.
    pub duration: Duration,
    /// At most this many checkouts per phase.
    pub attempts: usize,
    /// Arrivals per second of the open loop; `None`: half of what the closed loop settled.
    pub rate: Option<f64>,
    /// Where `checkout.json` and `checkout.svg` go; `None` writes nothing.
    pub out_dir: Option<PathBuf>,
    /// The service binaries.
    pub bin_dir: PathBuf,
    pub database_url: String,
    pub redis_url: String,
    pub kafka: Option<String>,
    /// Print a progress line while a phase runs.
    pub progress: bool,
    /// More environment for every service (`KOMMERCE_SAGA__CONSUMERS=6`), for experiments.
    pub env: Vec<(String, String)>,
    /// The stock pool's strategy (the chart's default is `reservation`).
    pub strategy: kommerce_contracts::stock_pool::Strategy,
}

/// Payment→order latency percentiles, milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        Self {
            p50_ms: percentile(&ms, 0.50),
            p95_ms: percentile(&ms, 0.95),
            p99_ms: percentile(&ms, 0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    pub name: String,
    /// `closed` (a fixed number of shoppers) or `open` (a fixed arrival rate).
    pub mode: &'static str,
    pub concurrency: usize,
    /// Arrivals per second asked for (open loop).
    pub rate: f64,
    /// How long checkouts were issued.
    pub seconds: f64,
    pub attempts: usize,
    /// Payments answered 201.
    pub accepted: usize,
    pub accepted_per_sec: f64,
    /// Payments that reached their end: the order exists and the payment reads `completed`,
    /// or the payment was refunded.
    pub settled: usize,
    pub completed: usize,
    pub refunded: usize,
    /// Settled checkouts per second, from the first payment to the last settlement.
    pub settled_per_sec: f64,
    /// From the payment's `created_at` to its order's.
    pub latency: Latency,
    /// Orders made in each second of the phase (from their `created_at`).
    pub orders_per_second: Vec<usize>,
    /// Errors by kind: the HTTP status (`503`) or `transport`, `overload` (open loop: more
    /// than the in-flight bound waiting).
    pub errors: BTreeMap<String, usize>,
    /// PostgreSQL commits across the platform's databases per settled checkout.
    pub commits_per_checkout: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ceilings {
    /// One-row durable inserts per second at `concurrency` connections.
    pub pg_commits_per_sec: f64,
    pub pg_concurrency: usize,
    /// The router and the user service answering `GET /api/v1/auth/jwks.json` (in memory).
    pub http_noop_per_sec: f64,
    pub http_noop_p50_ms: f64,
    pub http_noop_p99_ms: f64,
    /// One small message produced and consumed, one at a time.
    pub kafka_rtt_p50_ms: f64,
    pub kafka_rtt_p99_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Footprint {
    pub service: &'static str,
    /// From exec to the first ready answer.
    pub ready_ms: f64,
    pub rss_idle_mb: f64,
    pub rss_after_closed_mb: f64,
    pub rss_after_open_mb: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Invariants {
    pub ok: bool,
    /// Σ balances + Σ charged payments − Σ refunds, and Σ top-ups: equal.
    pub money_in_wallets_and_payments: i64,
    pub money_topped_up: i64,
    /// Σ totals of live orders, and Σ completed payments: equal.
    pub live_order_totals: i64,
    pub completed_payments: i64,
    /// Units sold (live order lines), and stock taken from the items: equal.
    pub units_sold: i64,
    pub stock_taken: i64,
    pub pending_payments: i64,
    /// What `kommerce audit` reports beyond these.
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub cores: usize,
    /// The stock pool's strategy during the run.
    pub strategy: &'static str,
    pub shoppers: usize,
    pub items: usize,
    pub phases: Vec<Phase>,
    pub ceilings: Ceilings,
    /// Settled checkouts/s of the closed loop as a fraction of what PostgreSQL's commit rate
    /// allows for the commits one checkout needs.
    pub fraction_of_pg_ceiling: f64,
    /// p99 payment→order of the open loop as a multiple of the broker's round trip (p50).
    pub p99_vs_kafka_rtt: f64,
    pub footprint: Vec<Footprint>,
    /// Every service's RSS together, idle (MB).
    pub rss_idle_total_mb: f64,
    pub invariants: Invariants,
    /// The run was stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// What one phase is asked to do.
#[derive(Debug, Clone, Copy)]
enum Load {
    Closed(usize),
    Open(f64),
}

struct Shop {
    base: String,
    http: reqwest::Client,
    shoppers: Vec<Shopper>,
    items: Vec<Uuid>,
    pay: PgPool,
    order: PgPool,
    server: PgPool,
    databases: Vec<String>,
    stop: Arc<AtomicBool>,
}

/// The item of a shopper's `nth` checkout: each shopper cycles through every item, so a line
/// for an item is long gone (its order made) before the same shopper adds that item again —
/// adding to a line still in the cart would raise its quantity, and its total.
fn item_for(shop: &Shop, shopper: usize, nth: usize) -> Uuid {
    shop.items[(shopper + nth) % shop.items.len()]
}

/// A checkout's answer: accepted, or an error's kind.
async fn checkout(shop: &Shop, who: &Shopper, item: Uuid) -> Result<(), String> {
    let kind = |r: &reqwest::Response| r.status().as_u16().to_string();
    let line = shop
        .http
        .post(format!("{}/api/v1/cart/items", shop.base))
        .bearer_auth(&who.token)
        .json(&json!({"item_id": item, "qty": 1}))
        .send()
        .await
        .map_err(|_| "transport".to_owned())?;
    if !line.status().is_success() {
        return Err(format!("cart {}", kind(&line)));
    }
    let line: Value = line.json().await.map_err(|_| "transport".to_owned())?;
    let paid = shop
        .http
        .post(format!("{}/api/v1/payments", shop.base))
        .bearer_auth(&who.token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(
            &json!({"cart_line_ids": [line["id"]], "address_id": who.address_id,
                      "amount_minor": PRICE, "method": "wallet"}),
        )
        .send()
        .await
        .map_err(|_| "transport".to_owned())?;
    if paid.status().as_u16() != 201 {
        return Err(format!("pay {}", kind(&paid)));
    }
    // The shopper waits for the answer as the storefront does (web/src/lib/poll.ts): the
    // payment at once, then after 250 ms, doubling to 2 s; a checkout ends when its order
    // exists or its refund is made.
    let paid: Value = paid.json().await.map_err(|_| "transport".to_owned())?;
    let url = format!(
        "{}/api/v1/payments/{}",
        shop.base,
        paid["id"].as_str().unwrap_or_default()
    );
    let mut wait = Duration::ZERO;
    for _ in 0..40 {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).clamp(Duration::from_millis(250), Duration::from_secs(2));
        let now: Value = match shop.http.get(&url).bearer_auth(&who.token).send().await {
            Ok(r) if r.status().is_success() => {
                r.json().await.map_err(|_| "transport".to_owned())?
            }
            Ok(r) => return Err(format!("follow {}", kind(&r))),
            Err(_) => return Err("transport".into()),
        };
        if now["status"] != "pending_order" {
            return Ok(());
        }
    }
    Err("not settled in a minute".into())
}

#[derive(Default)]
struct Tally {
    attempts: AtomicUsize,
    accepted: AtomicUsize,
    errors: std::sync::Mutex<BTreeMap<String, usize>>,
}

impl Tally {
    fn record(&self, outcome: Result<(), String>) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(kind) => {
                if let Ok(mut e) = self.errors.lock() {
                    *e.entry(kind).or_default() += 1;
                }
            }
        }
    }
}

/// Issues checkouts for `opts.duration` (or `opts.attempts`, or until stopped). A checkout is
/// add to cart, pay, and follow the payment until the saga has settled it.
async fn drive(shop: &Arc<Shop>, load: Load, opts: &CheckoutBench, tally: &Arc<Tally>) -> f64 {
    let started = Instant::now();
    let deadline = started + opts.duration;
    let busy = |t: &Tally| {
        Instant::now() < deadline
            && t.attempts.load(Ordering::Relaxed) < opts.attempts
            && !shop.stop.load(Ordering::Relaxed)
    };
    let progress = opts.progress.then(|| {
        let (tally, shop, total) = (tally.clone(), shop.clone(), opts.duration.as_secs_f64());
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let secs = started.elapsed().as_secs_f64();
                let accepted = tally.accepted.load(Ordering::Relaxed);
                let errors: usize = tally.errors.lock().map_or(0, |e| e.values().sum());
                let filled = usize_of((secs / total).min(1.0) * 30.0);
                // Redirected: a line every ten seconds rather than a bar redrawn in place.
                if !terminal && usize_of(secs * 2.0) % 20 != 0 {
                    continue;
                }
                eprint!(
                    "{}  [{}{}] {secs:5.1}/{total:.0} s  accepted {accepted} ({:.0}/s)  errors {errors}   ",
                    if terminal { "\r" } else { "\n" },
                    "#".repeat(filled),
                    ".".repeat(30 - filled),
                    f64_of(accepted) / secs.max(0.001)
                );
                if shop.stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    });
    match load {
        Load::Closed(workers) => {
            let per = shop.shoppers.len() / workers.max(1);
            futures::future::join_all((0..workers).map(|w| {
                let (shop, tally) = (shop.clone(), tally.clone());
                async move {
                    // Each worker buys as its own shoppers: no two requests of one wallet race.
                    let mine = &shop.shoppers[w * per..(w + 1) * per];
                    let mut k = 0;
                    while busy(&tally) {
                        let (j, nth) = (k % per, k / per);
                        let item = item_for(&shop, w * per + j, nth);
                        tally.record(checkout(&shop, &mine[j], item).await);
                        k += 1;
                    }
                }
            }))
            .await;
        }
        Load::Open(rate) => {
            // Arrivals on a clock, whatever the answers: a bounded number in flight, beyond
            // which an arrival is counted as overload rather than queued in this process.
            let bound = Arc::new(tokio::sync::Semaphore::new(4_096));
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = tokio::task::JoinSet::new();
            let mut k = 0usize;
            while busy(tally) {
                tick.tick().await;
                let Ok(permit) = bound.clone().try_acquire_owned() else {
                    tally.record(Err("overload".into()));
                    continue;
                };
                let (shop, tally) = (shop.clone(), tally.clone());
                let n = shop.shoppers.len();
                let who = shop.shoppers[k % n].clone();
                let item = item_for(&shop, k % n, k / n);
                k += 1;
                tasks.spawn(async move {
                    tally.record(checkout(&shop, &who, item).await);
                    drop(permit);
                });
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    seconds
}

#[allow(clippy::cast_precision_loss)]
fn f64_of(n: usize) -> f64 {
    n as f64
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn usize_of(x: f64) -> usize {
    x.max(0.0) as usize
}

/// Commits so far across the platform's databases.
async fn commits(shop: &Shop) -> anyhow::Result<i64> {
    // The statistics are flushed at most once a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(xact_commit), 0)::int8 FROM pg_stat_database WHERE datname = ANY($1)",
    )
    .bind(&shop.databases)
    .fetch_one(&shop.server)
    .await?)
}

/// Waits until no payment is pending (at most two minutes).
async fn settle(shop: &Shop) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM payments WHERE status = 'pending_order'")
                .fetch_one(&shop.pay)
                .await?;
        if pending == 0 {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("{pending} payments still pending two minutes after the phase");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One phase: drive, settle, and read what the saga did from the databases.
#[allow(clippy::too_many_lines)] // one phase, start to end, in the order it happens
async fn phase(
    shop: &Arc<Shop>,
    name: &str,
    load: Load,
    opts: &CheckoutBench,
) -> anyhow::Result<Phase> {
    let since: time::OffsetDateTime = sqlx::query_scalar("SELECT now()")
        .fetch_one(&shop.pay)
        .await?;
    let commits_before = commits(shop).await?;
    let tally = Arc::new(Tally::default());
    println!(
        "{name}: {}",
        match load {
            Load::Closed(c) => format!("{c} concurrent shoppers (closed loop)"),
            Load::Open(r) => format!("{r:.0} arrivals/s (open loop)"),
        }
    );
    let seconds = drive(shop, load, opts, &tally).await;
    settle(shop).await?;
    let commits_after = commits(shop).await?;

    let payments: Vec<(Uuid, String, time::OffsetDateTime, time::OffsetDateTime)> = sqlx::query_as(
        "SELECT id, status, created_at, updated_at FROM payments WHERE created_at >= $1",
    )
    .bind(since)
    .fetch_all(&shop.pay)
    .await?;
    let ids: Vec<Uuid> = payments.iter().map(|p| p.0).collect();
    let orders: BTreeMap<Uuid, time::OffsetDateTime> =
        sqlx::query_as::<_, (Uuid, time::OffsetDateTime)>(
            "SELECT payment_id, created_at FROM orders WHERE payment_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&shop.order)
        .await?
        .into_iter()
        .collect();
    let first = payments.iter().map(|p| p.2).min().unwrap_or(since);
    let mut latencies = Vec::new();
    let mut last = first;
    let (mut completed, mut refunded) = (0, 0);
    let mut per_second = Vec::<usize>::new();
    for (id, status, created, updated) in &payments {
        match (status.as_str(), orders.get(id)) {
            ("completed", Some(made)) => {
                completed += 1;
                latencies.push((*made - *created).as_seconds_f64() * 1_000.0);
                last = last.max(*made);
                let second = usize_of((*made - first).as_seconds_f64());
                if per_second.len() <= second {
                    per_second.resize(second + 1, 0);
                }
                per_second[second] += 1;
            }
            ("refunded" | "cancelled", _) => {
                refunded += 1;
                last = last.max(*updated);
            }
            _ => {}
        }
    }
    let settled = completed + refunded;
    let span = (last - first).as_seconds_f64().max(0.001);
    let accepted = tally.accepted.load(Ordering::Relaxed);
    let phase = Phase {
        name: name.to_owned(),
        mode: match load {
            Load::Closed(_) => "closed",
            Load::Open(_) => "open",
        },
        concurrency: match load {
            Load::Closed(c) => c,
            Load::Open(_) => 0,
        },
        rate: match load {
            Load::Closed(_) => 0.0,
            Load::Open(r) => r,
        },
        seconds,
        attempts: tally.attempts.load(Ordering::Relaxed),
        accepted,
        accepted_per_sec: f64_of(accepted) / seconds.max(0.001),
        settled,
        completed,
        refunded,
        settled_per_sec: f64_of(settled) / span,
        latency: Latency::of(latencies),
        orders_per_second: per_second,
        errors: tally.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        #[allow(clippy::cast_precision_loss)]
        commits_per_checkout: (commits_after - commits_before) as f64 / f64_of(settled.max(1)),
    };
    println!(
        "  accepted {} ({:.0}/s), settled {} ({:.0}/s: {} orders, {} refunded), payment→order p50 {:.0} ms p99 {:.0} ms max {:.0} ms, errors {:?}",
        phase.accepted,
        phase.accepted_per_sec,
        phase.settled,
        phase.settled_per_sec,
        phase.completed,
        phase.refunded,
        phase.latency.p50_ms,
        phase.latency.p99_ms,
        phase.latency.max_ms,
        phase.errors
    );
    Ok(phase)
}

/// (a) PostgreSQL's durable commit rate: one-row inserts in autocommit at `concurrency`.
async fn pg_ceiling(server_url: &str, database: &str, concurrency: usize) -> anyhow::Result<f64> {
    let url = kommerce_kit::db::with_database_name(server_url, database);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency).unwrap_or(64))
        .connect_with(kommerce_kit::db::connect_options(&url)?)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
        .execute(&pool)
        .await?;
    let until = Instant::now() + Duration::from_secs_f64(CEILING_SECS);
    let done = AtomicUsize::new(0);
    futures::future::join_all((0..concurrency).map(|_| async {
        while Instant::now() < until {
            if sqlx::query("INSERT INTO bench_commits DEFAULT VALUES")
                .execute(&pool)
                .await
                .is_ok()
            {
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }))
    .await;
    sqlx::query("DROP TABLE bench_commits")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(f64_of(done.load(Ordering::Relaxed)) / CEILING_SECS)
}

/// (c) The broker's round trip: one small message produced (as the outbox relay produces:
/// `linger.ms` 5, all replicas) and consumed, 200 times, one at a time.
async fn kafka_ceiling(bootstrap: &str, namespace: &str) -> anyhow::Result<(f64, f64)> {
    use rdkafka::ClientConfig;
    use rdkafka::Message;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let topic = format!("{namespace}.bench-rtt");
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    let admin: AdminClient<_> = config.create()?;
    let options = AdminOptions::new();
    let _ = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &options,
        )
        .await?;
    let producer: FutureProducer = config
        .clone()
        .set("linger.ms", "5")
        .set("acks", "all")
        .create()?;
    let consumer: StreamConsumer = config
        .clone()
        .set("group.id", format!("{namespace}.bench-rtt"))
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&topic])?;
    // Until the consumer has its partition: a probe that comes back.
    let warm = Instant::now();
    let mut ms = Vec::new();
    let mut measured = 0;
    while measured < 200 {
        let key = Uuid::new_v4().to_string();
        let t = Instant::now();
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload("x"),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)?;
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(m) = consumer.recv().await {
                    if m.key() == Some(key.as_bytes()) {
                        break;
                    }
                }
            }
        })
        .await;
        if got.is_err() {
            if warm.elapsed() > Duration::from_secs(30) {
                bail!("the broker's round trip: no message back in 30 s");
            }
            continue;
        }
        // The first answers only say the consumer has joined.
        if warm.elapsed() > Duration::from_secs(1) || measured > 0 {
            ms.push(t.elapsed().as_secs_f64() * 1_000.0);
            measured += 1;
        }
    }
    let _ = admin.delete_topics(&[&topic], &options).await;
    ms.sort_by(f64::total_cmp);
    Ok((percentile(&ms, 0.5), percentile(&ms, 0.99)))
}

/// A process's resident memory, MB.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The invariants: money, orders and stock add up, nothing pending; plus `kommerce audit`.
pub async fn invariants(sources: &crate::audit::Sources) -> anyhow::Result<Invariants> {
    let (balances, charged, refunds, top_ups, completed, pending): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT coalesce(sum(balance_minor), 0)::int8 FROM wallets), \
                    (SELECT coalesce(sum(-delta_minor), 0)::int8 FROM wallet_entries WHERE kind = 'charge'), \
                    (SELECT coalesce(sum(amount_minor), 0)::int8 FROM refunds), \
                    (SELECT coalesce(sum(delta_minor), 0)::int8 FROM wallet_entries WHERE kind = 'top_up'), \
                    (SELECT coalesce(sum(amount_minor), 0)::int8 FROM payments WHERE status = 'completed'), \
                    (SELECT count(*) FROM payments WHERE status = 'pending_order')",
        )
        .fetch_one(&sources.pay)
        .await?;
    let (live_totals, units_sold): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(total_minor), 0)::int8, \
                coalesce((SELECT sum(qty) FROM order_lines l JOIN orders o ON o.id = l.order_id \
                          WHERE o.status NOT IN ('cancelled')), 0)::int8 \
         FROM orders WHERE status NOT IN ('cancelled')",
    )
    .fetch_one(&sources.order)
    .await?;
    let stock_taken: i64 = sqlx::query_scalar(
        "SELECT coalesce(-sum(delta), 0)::int8 FROM stock_ledger WHERE reason IN ('reservation', 'release')",
    )
    .fetch_one(&sources.item)
    .await?;
    let report = crate::audit::check(&crate::audit::gather(sources).await?, Duration::ZERO);
    let violations: Vec<String> = report
        .checks
        .iter()
        .flat_map(|c| c.violations.iter().map(move |v| format!("{}: {v}", c.name)))
        .collect();
    let money = balances + charged - refunds;
    Ok(Invariants {
        ok: money == top_ups
            && live_totals == completed
            && units_sold == stock_taken
            && pending == 0
            && violations.is_empty(),
        money_in_wallets_and_payments: money,
        money_topped_up: top_ups,
        live_order_totals: live_totals,
        completed_payments: completed,
        units_sold,
        stock_taken,
        pending_payments: pending,
        violations,
    })
}

/// Runs the benchmark; `Err` when it could not run or its invariants failed.
#[allow(clippy::too_many_lines)]
pub async fn run(opts: CheckoutBench) -> anyhow::Result<Report> {
    anyhow::ensure!(
        opts.shoppers >= opts.concurrency && opts.concurrency > 0 && opts.items > 0,
        "need at least as many shoppers ({}) as concurrent ones ({}), and items",
        opts.shoppers,
        opts.concurrency
    );
    let ns = format!("b{}", &Uuid::new_v4().simple().to_string()[..10]);
    let state_dir = std::env::temp_dir().join(format!("kommerce-bench-{ns}"));
    std::fs::create_dir_all(&state_dir)?;
    // The platform signs with a key this run knows, so shoppers' tokens can be minted.
    let auth = auth_settings();
    std::fs::write(
        state_dir.join("signing-keys"),
        format!("{}\n", auth.signing_key.expose()),
    )?;
    let signer = TokenSigner::new(&auth)?;
    let up = UpOptions {
        host: "127.0.0.1".into(),
        port: 0,
        database_url: opts.database_url.clone(),
        redis_url: opts.redis_url.clone(),
        state_dir: state_dir.clone(),
        bin_dir: opts.bin_dir.clone(),
        admin: None,
        namespace: Some(ns.clone()),
        kafka: opts.kafka.clone(),
        env: [(
            "KOMMERCE_TELEMETRY__LOG_FILTER".to_owned(),
            "warn".to_owned(),
        )]
        .into_iter()
        .chain(opts.env.iter().cloned())
        .collect(),
    };
    println!(
        "starting the platform ({}) from {}",
        ns,
        opts.bin_dir.display()
    );
    let platform = Platform::start(&up).await?;
    let result = measure(&opts, &up, &platform, &signer).await;
    platform.stop().await;
    drop_databases(&opts.database_url, &up).await;
    let _ = std::fs::remove_dir_all(&state_dir);
    let report = result?;
    if let Some(dir) = &opts.out_dir {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("checkout.json"),
            serde_json::to_string_pretty(&report)? + "\n",
        )?;
        std::fs::write(dir.join("checkout.svg"), chart(&report))?;
        println!("wrote {}", dir.join("checkout.json").display());
        println!("wrote {}", dir.join("checkout.svg").display());
    }
    if !report.invariants.ok {
        bail!("the books do not add up: {:?}", report.invariants);
    }
    Ok(report)
}

async fn drop_databases(server_url: &str, up: &UpOptions) {
    let Ok(options) = kommerce_kit::db::connect_options(server_url) else {
        return;
    };
    let Ok(server) = sqlx::PgPool::connect_with(options).await else {
        return;
    };
    for s in crate::topology::SERVICES {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            up.database_name(s)
        ))
        .execute(&server)
        .await;
    }
}

#[allow(clippy::too_many_lines)]
async fn measure(
    opts: &CheckoutBench,
    up: &UpOptions,
    platform: &Platform,
    signer: &TokenSigner,
) -> anyhow::Result<Report> {
    let base = format!("http://{}", platform.router());
    let pool = |name: &str| -> anyhow::Result<PgPool> {
        let spec = crate::topology::SERVICES
            .iter()
            .find(|s| s.name == name)
            .context("no such service")?;
        let url = kommerce_kit::db::with_database_name(&up.database_url, &up.database_name(spec));
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(kommerce_kit::db::connect_options(&url)?))
    };
    let pids = platform.pids();
    let mut footprint: Vec<Footprint> = platform
        .ready_times()
        .iter()
        .map(|(name, t)| Footprint {
            service: name,
            ready_ms: t.as_secs_f64() * 1_000.0,
            rss_idle_mb: pids
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |(_, pid)| rss_mb(*pid)),
            ..Footprint::default()
        })
        .collect();

    // The catalogue, the shoppers (their wallets topped up through the API).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency.max(64))
        .build()?;
    let admin = signer.sign(Uuid::new_v4(), Role::Admin, Uuid::new_v4())?.0;
    let post = |path: String, token: String, body: Value| {
        let http = http.clone();
        async move {
            let r = http
                .post(path)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("{} {}", r.status(), r.text().await.unwrap_or_default());
            }
            Ok::<Value, anyhow::Error>(r.json().await?)
        }
    };
    let category = post(
        format!("{base}/api/v1/categories"),
        admin.clone(),
        json!({"name": "Bench"}),
    )
    .await?;
    let mut items = Vec::new();
    for i in 0..opts.items {
        let item = post(
            format!("{base}/api/v1/items"),
            admin.clone(),
            json!({"name": format!("Bench item {i}"), "price_minor": PRICE,
                   "category_id": category["id"], "stock": 10_000_000}),
        )
        .await?;
        items.push(item["id"].as_str().unwrap_or_default().parse()?);
    }
    let shoppers = insert_shoppers(&pool("user")?, signer, opts.shoppers).await?;
    for chunk in shoppers.chunks(64) {
        futures::future::try_join_all(chunk.iter().map(|s| {
            post(
                format!("{base}/api/v1/wallet/top-up"),
                s.token.clone(),
                json!({"amount_minor": TOP_UP}),
            )
        }))
        .await?;
    }
    let server =
        sqlx::PgPool::connect_with(kommerce_kit::db::connect_options(&up.database_url)?).await?;
    let shop = Arc::new(Shop {
        base: base.clone(),
        http,
        shoppers,
        items,
        pay: pool("pay")?,
        order: pool("order")?,
        server,
        databases: crate::topology::SERVICES
            .iter()
            .map(|s| up.database_name(s))
            .collect(),
        stop: Arc::new(AtomicBool::new(false)),
    });
    {
        let interrupted = shop.stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nstopping: Ctrl-C (the report covers what ran)");
                interrupted.store(true, Ordering::Relaxed);
            }
        });
    }

    super::apply_stock_policy(
        &up.redis_url,
        up.namespace.as_deref().unwrap_or_default(),
        opts.strategy,
    )
    .await?;
    println!("stock strategy: {}", opts.strategy.as_str());

    // The ceilings first, on the idle platform.
    println!("ceilings: PostgreSQL commits, the HTTP stack, the broker's round trip");
    let pg = pg_ceiling(
        &up.database_url,
        &up.database_name(&crate::topology::SERVICES[0]),
        opts.concurrency,
    )
    .await?;
    // (b) the router and the user service answering a request that does nothing (the key set,
    // held in memory).
    let (http_rate, http_p50, http_p99) = super::http_ceiling(
        &reqwest::Client::new(),
        &format!("{base}/api/v1/auth/jwks.json"),
        opts.concurrency,
        CEILING_SECS,
    )
    .await;
    let bootstrap = up.kafka.clone().unwrap_or_else(|| "127.0.0.1:9092".into());
    let (rtt_p50, rtt_p99) =
        kafka_ceiling(&bootstrap, up.namespace.as_deref().unwrap_or("bench")).await?;
    let ceilings = Ceilings {
        pg_commits_per_sec: pg,
        pg_concurrency: opts.concurrency,
        http_noop_per_sec: http_rate,
        http_noop_p50_ms: http_p50,
        http_noop_p99_ms: http_p99,
        kafka_rtt_p50_ms: rtt_p50,
        kafka_rtt_p99_ms: rtt_p99,
    };
    println!(
        "  PostgreSQL {pg:.0} commits/s at {} connections; HTTP no-op {http_rate:.0}/s (p50 {http_p50:.1} ms, p99 {http_p99:.1} ms); broker round trip p50 {rtt_p50:.1} ms, p99 {rtt_p99:.1} ms",
        opts.concurrency
    );

    let mut phases = Vec::new();
    let closed = phase(&shop, "closed loop", Load::Closed(opts.concurrency), opts).await?;
    for f in &mut footprint {
        f.rss_after_closed_mb = pids
            .iter()
            .find(|(n, _)| *n == f.service)
            .map_or(0.0, |(_, pid)| rss_mb(*pid));
    }
    let rate = opts.rate.unwrap_or((closed.settled_per_sec / 2.0).max(1.0));
    phases.push(closed);
    if !shop.stop.load(Ordering::Relaxed) {
        phases.push(phase(&shop, "open loop", Load::Open(rate), opts).await?);
        for f in &mut footprint {
            f.rss_after_open_mb = pids
                .iter()
                .find(|(n, _)| *n == f.service)
                .map_or(0.0, |(_, pid)| rss_mb(*pid));
        }
    }

    let sources = crate::audit::Sources::connect(
        &up.database_url,
        up.namespace.as_deref(),
        Some(&bootstrap),
    )?;
    let invariants = invariants(&sources).await?;
    let closed = &phases[0];
    let allowed = ceilings.pg_commits_per_sec / closed.commits_per_checkout.max(1.0);
    let report = Report {
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        strategy: opts.strategy.as_str(),
        shoppers: opts.shoppers,
        items: opts.items,
        fraction_of_pg_ceiling: closed.settled_per_sec / allowed.max(0.001),
        p99_vs_kafka_rtt: phases.last().map_or(0.0, |p| p.latency.p99_ms)
            / ceilings.kafka_rtt_p50_ms.max(0.001),
        rss_idle_total_mb: footprint.iter().map(|f| f.rss_idle_mb).sum(),
        footprint,
        phases,
        ceilings,
        invariants,
        interrupted: shop.stop.load(Ordering::Relaxed),
    };
    print_summary(&report);
    Ok(report)
}

fn print_summary(r: &Report) {
    let closed = &r.phases[0];
    println!(
        "checkouts: {:.0} settled/s closed loop = {:.0} % of what PostgreSQL's {:.0} commits/s allow at {:.1} commits per checkout",
        closed.settled_per_sec,
        r.fraction_of_pg_ceiling * 100.0,
        r.ceilings.pg_commits_per_sec,
        closed.commits_per_checkout
    );
    if let Some(open) = r.phases.get(1) {
        println!(
            "payment→order at {:.0}/s: p99 {:.0} ms = {:.1} × the broker's round trip ({:.1} ms)",
            open.rate, open.latency.p99_ms, r.p99_vs_kafka_rtt, r.ceilings.kafka_rtt_p50_ms
        );
    }
    println!(
        "{:<8} {:>9} {:>10} {:>12} {:>10}",
        "SERVICE", "READY ms", "RSS idle", "after closed", "after open"
    );
    for f in &r.footprint {
        println!(
            "{:<8} {:>9.0} {:>8.1}MB {:>10.1}MB {:>8.1}MB",
            f.service, f.ready_ms, f.rss_idle_mb, f.rss_after_closed_mb, f.rss_after_open_mb
        );
    }
    println!("all services idle: {:.1} MB", r.rss_idle_total_mb);
    println!(
        "invariants: {}",
        if r.invariants.ok { "hold" } else { "FAILED" }
    );
}

/// Throughput over time (orders made per second, each phase, the PostgreSQL ceiling dashed)
/// and payment→order percentiles per phase (the broker's round trip dashed).
#[allow(clippy::too_many_lines, clippy::many_single_char_names)] // one drawing, top to bottom
pub fn chart(r: &Report) -> String {
    let (w, h) = (900.0_f64, 560.0_f64);
    let (left, top, plot_w, plot_h) = (70.0, 50.0, 800.0, 220.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="{left}" y="28" font-size="15" font-weight="bold">kommerce bench checkout — {} cores, {} shoppers, {} items, stock {}</text>
"##,
        r.cores, r.shoppers, r.items, r.strategy
    );
    let closed_cpc = r
        .phases
        .first()
        .map_or(1.0, |p| p.commits_per_checkout.max(1.0));
    let pg_allows = r.ceilings.pg_commits_per_sec / closed_cpc;
    let series: Vec<&Phase> = r.phases.iter().collect();
    let seconds = series
        .iter()
        .map(|p| p.orders_per_second.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let peak = series
        .iter()
        .flat_map(|p| p.orders_per_second.iter().copied())
        .max()
        .map_or(1.0, f64_of)
        .max(pg_allows)
        .max(1.0)
        * 1.1;
    let x = |s: f64| left + plot_w * s / f64_of(seconds);
    let y = |v: f64| top + plot_h - plot_h * v / peak;
    let _ = writeln!(
        svg,
        r##"<text x="{left}" y="{}" >orders made per second (from the saga's timestamps)</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#333"/>
<text x="{}" y="{}" text-anchor="end">{:.0}</text><text x="{}" y="{}" text-anchor="end">0</text>"##,
        top - 6.0,
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h,
        left - 6.0,
        top + 4.0,
        peak,
        left - 6.0,
        top + plot_h
    );
    let colours = ["#1f6feb", "#d4731a"];
    for (i, p) in series.iter().enumerate() {
        let points: Vec<String> = p
            .orders_per_second
            .iter()
            .enumerate()
            .map(|(s, n)| format!("{:.1},{:.1}", x(f64_of(s) + 0.5), y(f64_of(*n))))
            .collect();
        let colour = colours[i % colours.len()];
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>
<text x="{}" y="{}" fill="{colour}">{} ({:.0} settled/s)</text>"#,
            points.join(" "),
            left + plot_w - 250.0,
            top + 16.0 + 16.0 * f64_of(i),
            p.name,
            p.settled_per_sec
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#b00" stroke-dasharray="6 4"/>
<text x="{2}" y="{3:.1}" fill="#b00">PostgreSQL allows {4:.0}/s ({5:.0} commits/s ÷ {6:.1} per checkout)</text>"##,
        y(pg_allows),
        left + plot_w,
        left + 8.0,
        y(pg_allows) - 4.0,
        pg_allows,
        r.ceilings.pg_commits_per_sec,
        closed_cpc
    );

    // Latency percentiles per phase.
    let (top2, plot_h2) = (340.0, 160.0);
    let worst = series
        .iter()
        .map(|p| p.latency.p99_ms)
        .fold(r.ceilings.kafka_rtt_p50_ms, f64::max)
        .max(1.0)
        * 1.15;
    let y2 = |v: f64| top2 + plot_h2 - plot_h2 * v / worst;
    let _ = writeln!(
        svg,
        r##"<text x="{left}" y="{}">payment → order, ms (p50 / p95 / p99 per phase)</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##,
        top2 - 6.0,
        top2 + plot_h2,
        left + plot_w,
        top2 + plot_h2
    );
    for (i, p) in series.iter().enumerate() {
        let colour = colours[i % colours.len()];
        for (j, (label, v)) in [
            ("p50", p.latency.p50_ms),
            ("p95", p.latency.p95_ms),
            ("p99", p.latency.p99_ms),
        ]
        .iter()
        .enumerate()
        {
            let bx = left + 40.0 + f64_of(i) * 330.0 + f64_of(j) * 90.0;
            let _ = writeln!(
                svg,
                r#"<rect x="{bx:.1}" y="{:.1}" width="60" height="{:.1}" fill="{colour}" opacity="{}"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{label} {v:.0}</text>"#,
                y2(*v),
                top2 + plot_h2 - y2(*v),
                0.45 + 0.25 * f64_of(j),
                bx + 30.0,
                y2(*v) - 4.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{colour}">{}{}</text>"#,
            left + 40.0 + f64_of(i) * 330.0 + 120.0,
            top2 + plot_h2 + 18.0,
            p.name,
            if p.mode == "open" {
                format!(" at {:.0}/s", p.rate)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#b00" stroke-dasharray="6 4"/>
<text x="{2}" y="{3:.1}" fill="#b00" text-anchor="end">broker round trip p50 {4:.1} ms</text>
<text x="{left}" y="{5}">HTTP no-op through the router: {6:.0}/s (p99 {7:.1} ms) · invariants {8}</text>
</svg>"##,
        y2(r.ceilings.kafka_rtt_p50_ms),
        left + plot_w,
        left + plot_w,
        y2(r.ceilings.kafka_rtt_p50_ms) - 4.0,
        r.ceilings.kafka_rtt_p50_ms,
        top2 + plot_h2 + 44.0,
        r.ceilings.http_noop_per_sec,
        r.ceilings.http_noop_p99_ms,
        if r.invariants.ok { "hold" } else { "FAILED" }
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_come_from_the_samples() {
        let l = Latency::of((1..=1000).rev().map(f64::from).collect());
        assert!((l.p50_ms - 501.0).abs() < 1e-9 && (l.p99_ms - 990.0).abs() < 1e-9);
        assert!((l.max_ms - 1000.0).abs() < 1e-9);
        assert!(Latency::of(Vec::new()).max_ms.abs() < 1e-9);
    }

    #[test]
    fn the_chart_draws_both_phases_and_the_ceilings() {
        let phase = |name: &str, mode| Phase {
            name: name.into(),
            mode,
            orders_per_second: vec![100, 300, 280],
            settled_per_sec: 290.0,
            commits_per_checkout: 12.0,
            latency: Latency {
                p50_ms: 40.0,
                p95_ms: 90.0,
                p99_ms: 150.0,
                max_ms: 200.0,
            },
            ..Phase::default()
        };
        let r = Report {
            cores: 2,
            phases: vec![phase("closed loop", "closed"), phase("open loop", "open")],
            ceilings: Ceilings {
                pg_commits_per_sec: 6_000.0,
                kafka_rtt_p50_ms: 6.0,
                ..Ceilings::default()
            },
            ..Report::default()
        };
        let svg = chart(&r);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("PostgreSQL allows 500/s"), "{svg}");
        assert!(svg.contains("broker round trip p50 6.0 ms"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
