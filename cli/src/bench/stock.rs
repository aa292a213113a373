//! `kommerce bench stock`: one hot SKU, N concurrent buyers, every stock strategy in the same
//! run through the item service's reservation API — the real service (in this process, on
//! loopback) against the real PostgreSQL and Redis, each strategy switched live through the
//! StockPool contract. Prints a table and writes JSON and an SVG chart.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kommerce_contracts::stock_pool::{PoolPolicy, Strategy};
use kommerce_item::{App, MIGRATIONS, Settings};
use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings, redis_url};
use kommerce_kit::{HttpSettings, TelemetrySettings};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::percentile;

#[derive(Debug, Clone)]
pub struct StockBench {
    /// The strategies to run, in order; the first is the baseline of the ratios.
    pub strategies: Vec<Strategy>,
    pub buyers: usize,
    pub attempts: usize,
    pub stock: i64,
    pub out_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct StrategyResult {
    pub strategy: &'static str,
    pub attempts: usize,
    pub sold: usize,
    pub refused: usize,
    pub errors: usize,
    pub seconds: f64,
    /// Answered reservation requests per second.
    pub ops_per_sec: f64,
    pub sales_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Units sold beyond the stock, counted in the database.
    pub oversold: i64,
    /// Redis commands the whole server processed per sale (every client of this Redis counts).
    pub redis_commands_per_sale: f64,
    /// Ops/s relative to the first strategy run (spinLock by default).
    pub ratio_vs_baseline: f64,
    /// Ops/s as a fraction of the run's HTTP ceiling (the service answering a no-op).
    pub fraction_of_http_ceiling: f64,
}

/// Ceiling (b) of this run: the same item service answering a request that does nothing
/// (`GET /healthz`), from the same client at the same concurrency, measured first (which also
/// opens the buyers' connections before any strategy runs).
#[derive(Debug, Clone, Serialize)]
pub struct HttpCeiling {
    pub url: String,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// How long the ceiling is measured.
const CEILING_SECS: f64 = 2.0;

fn redis_commands() -> anyhow::Result<u64> {
    let mut conn = redis::Client::open(redis_url())?.get_connection()?;
    let info: String = redis::cmd("INFO").arg("stats").query(&mut conn)?;
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .context("INFO stats has no total_commands_processed")
}

struct Target {
    base: String,
    http: reqwest::Client,
    admin: String,
    db: sqlx::PgPool,
    prefix: String,
}

impl Target {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .json(body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "{path}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(r.json().await?)
    }

    async fn apply(&self, strategy: Strategy) -> anyhow::Result<()> {
        // Long enough a bounded wait that the lock strategy is measured, not its timeouts.
        let policy = PoolPolicy {
            strategy,
            max_wait_ms: 30_000,
            ..PoolPolicy::default()
        };
        let (doc, hash) = (policy.document(), policy.hash());
        let mut conn = redis::Client::open(redis_url())?.get_connection()?;
        let () = redis::cmd("SET")
            .arg(format!("{}stockpool:default", self.prefix))
            .arg(&doc)
            .query(&mut conn)?;
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{}stockpool:default:changed", self.prefix))
            .arg(&hash)
            .query(&mut conn)?;
        let ack = format!("{}stockpool:default:ack:bench", self.prefix);
        let started = Instant::now();
        loop {
            let got: Option<String> = redis::cmd("GET").arg(&ack).query(&mut conn)?;
            if got.as_deref() == Some(hash.as_str()) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("the item service did not acknowledge {}", strategy.as_str());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn buy(t: &Target, item: &str) -> (u16, f64) {
    let body = json!({"reservation_id": Uuid::new_v4(), "lines": [{"item_id": item, "qty": 1}]});
    let started = Instant::now();
    let status = match t
        .http
        .post(format!("{}/internal/v1/stock/reservations", t.base))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    };
    (status, started.elapsed().as_secs_f64() * 1000.0)
}

async fn run_strategy(
    t: &Arc<Target>,
    category: &str,
    strategy: Strategy,
    opts: &StockBench,
) -> anyhow::Result<StrategyResult> {
    t.apply(strategy).await?;
    let item = t
        .post("/api/v1/items", &json!({"name": format!("Hot SKU ({})", strategy.as_str()), "price_minor": 1999, "category_id": category, "stock": opts.stock}))
        .await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let commands_before = redis_commands()?;
    let started = Instant::now();
    let per_buyer = opts.attempts.div_ceil(opts.buyers);
    let mut tasks = Vec::with_capacity(opts.buyers);
    for b in 0..opts.buyers {
        let t = t.clone();
        let item = item.clone();
        let n = per_buyer.min(opts.attempts.saturating_sub(b * per_buyer));
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(buy(&t, &item).await);
            }
            out
        }));
    }
    let mut results = Vec::with_capacity(opts.attempts);
    for task in tasks {
        results.extend(task.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let commands = redis_commands()?.saturating_sub(commands_before);
    let sold = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results.iter().filter(|(s, _)| *s == 409).count();
    let mut latencies: Vec<f64> = results.iter().map(|(_, ms)| *ms).collect();
    latencies.sort_by(f64::total_cmp);
    let item_id: Uuid = item.parse()?;
    let units: i64 = sqlx::query_scalar("SELECT COALESCE(sum(qty), 0)::bigint FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id WHERE l.item_id = $1 AND r.status = 'reserved'")
        .bind(item_id)
        .fetch_one(&t.db)
        .await?;
    #[allow(clippy::cast_precision_loss)]
    let (ops_per_sec, sales_per_sec) = (results.len() as f64 / seconds, sold as f64 / seconds);
    #[allow(clippy::cast_precision_loss)]
    let per_sale = if sold == 0 {
        0.0
    } else {
        commands as f64 / sold as f64
    };
    Ok(StrategyResult {
        strategy: strategy.as_str(),
        attempts: results.len(),
        sold,
        refused,
        errors: results.len() - sold - refused,
        seconds,
        ops_per_sec,
        sales_per_sec,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        oversold: (units - opts.stock).max(0),
        redis_commands_per_sale: per_sale,
        ratio_vs_baseline: 0.0,
        fraction_of_http_ceiling: 0.0,
    })
}

/// Runs the benchmark and writes `stock.json` and `stock.svg` into `out_dir`.
pub async fn stock(opts: StockBench) -> anyhow::Result<Vec<StrategyResult>> {
    kommerce_kit::telemetry::init(
        "bench",
        &TelemetrySettings {
            log_filter: "error".into(),
            json: false,
        },
    );
    // The item service consumes rating events: its inbox comes with the kit's migrations.
    let db = TestDatabase::create(MIGRATIONS).await;
    let ns = RedisNamespace::new();
    let auth = auth_settings();
    let mut settings = Settings {
        http: HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            request_timeout_ms: 60_000,
            ..HttpSettings::default()
        },
        database: db.settings(),
        redis: ns.settings(),
        auth: auth.clone(),
        // A Kafka namespace of its own: never the `item` group of a `kommerce up` on this broker.
        kafka: kommerce_kit::testing::kafka_settings(),
        ..Settings::default()
    };
    settings.database.max_connections = 16;
    settings.database.acquire_timeout_ms = 60_000;
    settings.stock.instance_id = Some("bench".into());
    settings.stock.ack_interval_ms = 200;
    let app = App::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let admin = TokenSigner::new(&auth)?
        .sign(Uuid::new_v4(), Role::Admin, Uuid::new_v4())?
        .0;
    // The buyers call the reservation route as the order service does, with its credential
    // (verified on every request, as in production).
    let credential = kommerce_kit::credential::credential(
        &kommerce_kit::testing::test_service_key().0,
        "order",
        "item",
        std::time::Duration::from_secs(3600),
    )?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(kommerce_kit::credential::HEADER, credential.parse()?);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.buyers)
        .default_headers(headers)
        .build()?;
    let target = Arc::new(Target {
        base,
        http,
        admin,
        db: db.pool.clone(),
        prefix: ns.prefix.clone(),
    });
    let category = target
        .post("/api/v1/categories", &json!({"name": "Bench"}))
        .await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    println!("ceiling: the item service answering a no-op ...");
    let url = format!("{}/healthz", target.base);
    let (per_sec, p50_ms, p99_ms) =
        super::http_ceiling(&target.http, &url, opts.buyers, CEILING_SECS).await;
    let ceiling = HttpCeiling {
        url: "GET /healthz".into(),
        per_sec,
        p50_ms,
        p99_ms,
    };
    let mut results = Vec::new();
    for strategy in opts.strategies.clone() {
        println!("running {} ...", strategy.as_str());
        results.push(run_strategy(&target, &category, strategy, &opts).await?);
    }
    let base_ops = results
        .first()
        .map_or(1.0, |r| r.ops_per_sec.max(f64::EPSILON));
    for r in &mut results {
        r.ratio_vs_baseline = r.ops_per_sec / base_ops;
        r.fraction_of_http_ceiling = r.ops_per_sec / ceiling.per_sec.max(f64::EPSILON);
    }
    print_table(&results, &opts, &ceiling);
    std::fs::create_dir_all(&opts.out_dir)?;
    let report = json!({
        "benchmark": "stock: one hot SKU through POST /internal/v1/stock/reservations",
        "buyers": opts.buyers, "attempts_per_strategy": opts.attempts, "stock": opts.stock,
        "cores": std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        "note": "service, PostgreSQL, Redis and the load generator share this machine",
        "http_ceiling": ceiling,
        "results": results,
    });
    std::fs::write(
        opts.out_dir.join("stock.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    std::fs::write(opts.out_dir.join("stock.svg"), chart(&results, &opts))?;
    println!("wrote {}", opts.out_dir.join("stock.json").display());
    println!("wrote {}", opts.out_dir.join("stock.svg").display());
    Ok(results)
}

fn print_table(results: &[StrategyResult], opts: &StockBench, ceiling: &HttpCeiling) {
    println!(
        "\none hot SKU, stock {}, {} buyers, {} attempts per strategy; \
         ceiling: {} {:.0}/s (p50 {:.2} ms, p99 {:.2} ms)\n",
        opts.stock,
        opts.buyers,
        opts.attempts,
        ceiling.url,
        ceiling.per_sec,
        ceiling.p50_ms,
        ceiling.p99_ms
    );
    println!(
        "{:<18} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>12} {:>8} {:>9}",
        "strategy",
        "ops/s",
        "sales/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "oversold",
        "redis/sale",
        "×first",
        "ceiling"
    );
    for r in results {
        println!(
            "{:<18} {:>9.0} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>9} {:>12.1} {:>8.2} {:>8.0}%",
            r.strategy,
            r.ops_per_sec,
            r.sales_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            r.oversold,
            r.redis_commands_per_sale,
            r.ratio_vs_baseline,
            r.fraction_of_http_ceiling * 100.0
        );
    }
}

/// A bar chart of ops/s with p99 labels, as a self-contained SVG.
pub fn chart(results: &[StrategyResult], opts: &StockBench) -> String {
    let (w, h, left, top, bottom) = (720.0, 360.0, 70.0, 50.0, 60.0);
    let max = results.iter().map(|r| r.ops_per_sec).fold(1.0, f64::max);
    let plot_h = h - top - bottom;
    #[allow(clippy::cast_precision_loss)]
    let slot = (w - left - 20.0) / results.len().max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="16" font-weight="bold">Stock reservations per second — one hot SKU, {} buyers, stock {}</text>
<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#333"/>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#333"/>
"##,
        opts.buyers,
        opts.stock,
        h - bottom,
        h - bottom,
        w - 20.0,
        h - bottom
    );
    for (i, r) in results.iter().enumerate() {
        let bar_h = plot_h * r.ops_per_sec / max;
        #[allow(clippy::cast_precision_loss)]
        let x = left + slot * i as f64 + slot * 0.2;
        let y = h - bottom - bar_h;
        let colour = ["#d9534f", "#f0ad4e", "#5cb85c"]
            .get(i)
            .copied()
            .unwrap_or("#5bc0de");
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bar_h:.1}" fill="{colour}"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.0}/s (×{:.1}) · p99 {:.1} ms</text>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
"#,
            slot * 0.6,
            x + slot * 0.3,
            y - 6.0,
            r.ops_per_sec,
            r.ratio_vs_baseline,
            r.p99_ms,
            x + slot * 0.3,
            h - bottom + 20.0,
            r.strategy
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_a_bar_per_strategy() {
        let r = |s, ops| StrategyResult {
            strategy: s,
            attempts: 1,
            sold: 1,
            refused: 0,
            errors: 0,
            seconds: 1.0,
            ops_per_sec: ops,
            sales_per_sec: ops,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
            oversold: 0,
            redis_commands_per_sale: 1.0,
            ratio_vs_baseline: 1.0,
            fraction_of_http_ceiling: 0.1,
        };
        let svg = chart(
            &[r("spinLock", 10.0), r("reservation", 200.0)],
            &StockBench {
                strategies: vec![Strategy::SpinLock, Strategy::Reservation],
                buyers: 64,
                attempts: 1,
                stock: 1,
                out_dir: PathBuf::new(),
            },
        );
        assert_eq!(svg.matches("<rect x=").count(), 2);
        assert!(svg.contains("reservation") && svg.ends_with("</svg>\n"));
    }
}
