//! `kommerce bench`: benchmarks run side by side in one run, their results written as JSON and
//! an SVG chart. `stock` compares the stock strategies on one hot SKU; `checkout` measures the
//! whole shop as separate processes against the ceilings of the machine it runs on.

pub mod checkout;
mod stock;

use kommerce_kit::auth::{Role, TokenSigner};
use sqlx::PgPool;
use uuid::Uuid;

pub use stock::{StockBench, StrategyResult, chart, stock};

/// The nearest-rank percentile `p` (0..=1) of `sorted`; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The HTTP ceiling of a stack: `url` answering a request that does nothing, `concurrency`
/// requests in flight for `seconds`. Returns answers per second, p50 and p99 in ms.
pub async fn http_ceiling(
    http: &reqwest::Client,
    url: &str,
    concurrency: usize,
    seconds: f64,
) -> (f64, f64, f64) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let all = futures::future::join_all((0..concurrency).map(|_| async move {
        let mut ms = Vec::new();
        while std::time::Instant::now() < until {
            let t = std::time::Instant::now();
            let ok = http
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                ms.push(t.elapsed().as_secs_f64() * 1_000.0);
            }
        }
        ms
    }))
    .await;
    let mut ms: Vec<f64> = all.into_iter().flatten().collect();
    ms.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let rate = ms.len() as f64 / seconds;
    (rate, percentile(&ms, 0.5), percentile(&ms, 0.99))
}

/// A customer with a default address and an access token.
#[derive(Debug, Clone)]
pub struct Shopper {
    pub id: Uuid,
    pub token: String,
    pub address_id: Uuid,
}

/// `n` customers with a default address each, written straight to the user service's database
/// (hashing a thousand passwords would measure argon2, not the saga), with tokens `signer`
/// signs — the signer of the platform's own key.
pub async fn insert_shoppers(
    user_db: &PgPool,
    signer: &TokenSigner,
    n: usize,
) -> anyhow::Result<Vec<Shopper>> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let addresses: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let emails: Vec<String> = ids
        .iter()
        .map(|i| format!("{}@shop.test", i.simple()))
        .collect();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, name, phone) \
         SELECT id, email, 'not-a-hash', 'Shopper', '+15550100' \
         FROM unnest($1::uuid[], $2::text[]) AS t(id, email)",
    )
    .bind(&ids)
    .bind(&emails)
    .execute(user_db)
    .await?;
    sqlx::query(
        "INSERT INTO addresses (id, user_id, recipient, phone, line1, city, postal_code, country, is_default) \
         SELECT a, u, 'Shopper', '+15550100', '1 Main St', 'Springfield', '12345', 'US', true \
         FROM unnest($1::uuid[], $2::uuid[]) AS t(a, u)",
    )
    .bind(&addresses)
    .bind(&ids)
    .execute(user_db)
    .await?;
    ids.iter()
        .zip(&addresses)
        .map(|(id, a)| {
            Ok(Shopper {
                id: *id,
                token: signer.sign(*id, Role::Customer, Uuid::new_v4())?.0,
                address_id: *a,
            })
        })
        .collect()
}

/// Sets the stock pool `default` of the platform in `namespace` to `strategy`, as the
/// operator does (the document, then the announcement), and waits until an item service
/// acknowledges it.
pub async fn apply_stock_policy(
    redis_url: &str,
    namespace: &str,
    strategy: kommerce_contracts::stock_pool::Strategy,
) -> anyhow::Result<()> {
    let policy = kommerce_contracts::stock_pool::PoolPolicy {
        strategy,
        ..Default::default()
    };
    let (doc, hash) = (policy.document(), policy.hash());
    let pool = kommerce_contracts::stock_pool::PoolKeys::new(&format!("{namespace}:"), "default");
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let () = redis::cmd("SET")
        .arg(&pool.config)
        .arg(&doc)
        .query_async(&mut conn)
        .await?;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&pool.channel)
        .arg(&hash)
        .query_async(&mut conn)
        .await?;
    let started = std::time::Instant::now();
    loop {
        let acks: Vec<String> = redis::cmd("KEYS")
            .arg(pool.ack_pattern())
            .query_async(&mut conn)
            .await?;
        for ack in acks {
            let got: Option<String> = redis::cmd("GET").arg(&ack).query_async(&mut conn).await?;
            if got.as_deref() == Some(hash.as_str()) {
                return Ok(());
            }
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no item service applied the stock policy {} in 20 s",
            strategy.as_str()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&v, 0.5) - 51.0).abs() < f64::EPSILON);
        assert!((percentile(&v, 0.99) - 99.0).abs() < f64::EPSILON);
        assert!(percentile(&[], 0.5).abs() < f64::EPSILON);
    }
}
